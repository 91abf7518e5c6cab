/*
 * output: the directory of the Slurm jobs' default output files; see
 * slurm-output.h. The proxy makes and hands over each task's directory
 * and never opens a file in it: slurmstepd writes them as the job's user
 * and the logs endpoint reads them as the task's user (lib/http).
 */
#include "slurm-output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int slurm_output_dir_setup(const char *dir, struct error *err)
{
    if (dir[0] != '/')
        return error_set(err, -EINVAL, "slurm.output_dir: must be an absolute path, not \"%s\"",
                         dir);
    int r = mkdir_p(dir, 0755);
    if (r < 0)
        return error_set_errno(err, r, "slurm.output_dir: %s", dir);
    _cleanup_free_ char *p = xstrdup(dir);
    for (char *end = p + strlen(p);;) {
        struct stat st;
        if (stat(p, &st) < 0)
            return error_set_errno(err, -errno, "slurm.output_dir: %s", p);
        if (!(st.st_mode & S_IXOTH))
            return error_set(err, -EACCES,
                             "slurm.output_dir: %s: the jobs' users cannot reach it: %s is "
                             "mode %04o, not searchable by others (set slurm.output_dir to a "
                             "directory the cluster's nodes share)",
                             dir, p, (unsigned) (st.st_mode & 07777));
        while (end > p && *end != '/')
            end--;
        if (end == p)
            break;
        *end = '\0';
    }
    return 0;
}

int slurm_output_task_dir(const char *dir, const char *id, uid_t uid, gid_t gid, struct error *err)
{
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return error_set_errno(err, -errno, "slurm output dir %s", dir);
    if (mkdirat(dfd, id, 0700) < 0 && errno != EEXIST)
        return error_set_errno(err, -errno, "mkdir %s/%s", dir, id);
    _cleanup_close_ int fd = openat(dfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(err, -errno, "%s/%s", dir, id);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return error_set_errno(err, -errno, "%s/%s", dir, id);
    if (st.st_uid == uid && st.st_gid == gid)
        return 0;
    /* Only a directory just made, root's, changes hands. */
    if (st.st_uid != geteuid())
        return error_set(err, -EPERM, "%s/%s: owned by uid %u, not the task's user", dir, id,
                         (unsigned) st.st_uid);
    if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0)
        return error_set_errno(err, -errno, "chown %s/%s", dir, id);
    return 0;
}
