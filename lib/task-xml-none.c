/*
 * task-xml-none: the XML parser when ocps-proxy is built without libxml2
 * (meson -Dxml=disabled). Every XML body is answered 415, so a client
 * learns that the format, not its document, is the problem.
 */
#include "task.h"

int task_xml_parse(const char *buf, size_t len, cJSON **ret, struct error *err)
{
    return error_set(err, -EMEDIUMTYPE, "XML support was not built in");
}
