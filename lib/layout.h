/*
 * layout: where the daemon keeps things under its data dir, named in one
 * place. Every path is allocated; the caller frees it.
 *
 *   <data_dir>/ocps-proxy.db          the store (SQLite, WAL beside it)
 *   <data_dir>/admin.token            the admin token made at first start (0600; tokens.h)
 *   <data_dir>/tokens.seq             the token table's change counter (0600; tokens.h)
 *   <data_dir>/shims/                 the process backend's shim sockets and log
 *   <data_dir>/tasks/<id>/            one directory per task that started (0700):
 *       stdout, stderr                its output, unless the task named files
 *       system.log                    what the proxy and its backend did for it
 *       exit.json                     its outcome (outcome.h)
 *       tes-log.json                  a TES task's executor logs, outputs, system logs (tes.h)
 *       tes-run.json                  how far a TES task's runner got, to resume it (tes-run.c)
 *       tes/root/                     a TES task's host mapping (tes-stage.h)
 *       shim.lock                     held by the process task's shim (shim.h)
 */
#pragma once

#define LAYOUT_STDOUT    "stdout"
#define LAYOUT_STDERR    "stderr"
#define LAYOUT_SYSLOG    "system.log"
#define LAYOUT_OUTCOME   "exit.json"
#define LAYOUT_TES_LOG   "tes-log.json"
#define LAYOUT_TES_RUN   "tes-run.json"
#define LAYOUT_SHIM_LOCK "shim.lock"

char *layout_db(const char *data_dir);
char *layout_admin_token(const char *data_dir);
char *layout_tokens_seq(const char *data_dir);
char *layout_tasks(const char *data_dir);
char *layout_shims(const char *data_dir);
/* <data_dir>/tasks/<id> */
char *layout_task_dir(const char *data_dir, const char *id);
/* <data_dir>/tasks/<id>/<name>, name one of the LAYOUT_ files above */
char *layout_task_file(const char *data_dir, const char *id, const char *name);
/* <task_dir>/<name>, for code handed the task's directory */
char *layout_in_task_dir(const char *task_dir, const char *name);
