/*
 * task-xml: a <task> document (JobProxy's JAXB form) to a cJSON tree, with
 * libxml2. Element names are the JSON field names; leaves become strings
 * (the validator reads numbers from strings); cmd is text or <arg> list;
 * env and tags are <entry key="k">v</entry> or <entry><key/><value/></entry>
 * maps. Container ports/mounts/volumes may repeat, as JobProxy's XSD lets
 * them, and always become arrays, one entry per element; inside one, the
 * port/mount/volume items may repeat too and become an array under their
 * name. So <mounts><mount>M</mount></mounts> is {"mounts": [{"mount":
 * [M]}]}: JAXB's shape, which the validator unwraps for every format
 * alike (an item written straight into <mounts> stays {"mounts": [M]}).
 * Namespaces are ignored. An attribute is refused unless it is known, as
 * an unknown JSON field is: the key of an <entry>, and the XML Schema
 * instance's schemaLocation and noNamespaceSchemaLocation, which
 * JobProxy's own task files carry (namespace declarations are not
 * attributes to libxml2). A DOCTYPE is refused before its
 * internal subset is read, so no entity is ever declared (billion laughs,
 * XXE), and nothing is loaded from the network or the disk.
 *
 * libxml2 (with ICU behind it, ~2 MB resident) is opened on the first XML
 * body, not at daemon start (util/dlopen.h): the sym_ pointers below stand
 * in for the library's functions and for the per-thread globals behind
 * its xmlFree and xmlStructuredError macros.
 */
#include "task.h"
#include "util/dlopen.h"
#include "util/hashmap.h"

#include <limits.h>
#include <pthread.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

static typeof(xmlInitParser) *sym_xmlInitParser;
#ifdef LIBXML_THREAD_ALLOC_ENABLED
#error "xmlFree is per thread in this libxml2 build: resolve __xmlFree instead"
#endif
static xmlFreeFunc *sym_xmlFree; /* the library's xmlFree variable */
static typeof(__xmlStructuredError) *sym___xmlStructuredError;
static typeof(__xmlStructuredErrorContext) *sym___xmlStructuredErrorContext;
static typeof(xmlSetStructuredErrorFunc) *sym_xmlSetStructuredErrorFunc;
static typeof(xmlStopParser) *sym_xmlStopParser;
static typeof(xmlGetLineNo) *sym_xmlGetLineNo;
static typeof(xmlNodeGetContent) *sym_xmlNodeGetContent;
static typeof(xmlGetProp) *sym_xmlGetProp;
static typeof(xmlNewParserCtxt) *sym_xmlNewParserCtxt;
static typeof(xmlCtxtReadMemory) *sym_xmlCtxtReadMemory;
static typeof(xmlFreeDoc) *sym_xmlFreeDoc;
static typeof(xmlFreeParserCtxt) *sym_xmlFreeParserCtxt;
static typeof(xmlDocGetRootElement) *sym_xmlDocGetRootElement;

static const struct dlsym_entry xml_syms[] = {
    DLSYM_ENTRY(xmlInitParser),
    DLSYM_ENTRY(xmlFree),
    DLSYM_ENTRY(__xmlStructuredError),
    DLSYM_ENTRY(__xmlStructuredErrorContext),
    DLSYM_ENTRY(xmlSetStructuredErrorFunc),
    DLSYM_ENTRY(xmlStopParser),
    DLSYM_ENTRY(xmlGetLineNo),
    DLSYM_ENTRY(xmlNodeGetContent),
    DLSYM_ENTRY(xmlGetProp),
    DLSYM_ENTRY(xmlNewParserCtxt),
    DLSYM_ENTRY(xmlCtxtReadMemory),
    DLSYM_ENTRY(xmlFreeDoc),
    DLSYM_ENTRY(xmlFreeParserCtxt),
    DLSYM_ENTRY(xmlDocGetRootElement),
    {},
};

/* From here on the library's names mean the pointers (the macro
 * xmlStructuredError expands to a call of __xmlStructuredError()). */
#define xmlInitParser               sym_xmlInitParser
#define xmlFree                     (*sym_xmlFree)
#define __xmlStructuredError        sym___xmlStructuredError
#define __xmlStructuredErrorContext sym___xmlStructuredErrorContext
#define xmlSetStructuredErrorFunc   sym_xmlSetStructuredErrorFunc
#define xmlStopParser               sym_xmlStopParser
#define xmlGetLineNo                sym_xmlGetLineNo
#define xmlNodeGetContent           sym_xmlNodeGetContent
#define xmlGetProp                  sym_xmlGetProp
#define xmlNewParserCtxt            sym_xmlNewParserCtxt
#define xmlCtxtReadMemory           sym_xmlCtxtReadMemory
#define xmlFreeDoc                  sym_xmlFreeDoc
#define xmlFreeParserCtxt           sym_xmlFreeParserCtxt
#define xmlDocGetRootElement        sym_xmlDocGetRootElement

#define XML_MAX_DEPTH 64

/* Per call: where libxml2's errors go instead of stderr. */
struct xml_errors {
    bool doctype;
    bool have;
    int line;
    int column;
    char msg[256];
};

enum xml_kind {
    XML_KIND_GENERIC, /* a leaf is a string, anything else an object of fields */
    XML_KIND_CMD,     /* text, or a list of <arg> */
    XML_KIND_MAP,     /* <entry> pairs */
};

struct xml_field {
    const char *name;
    enum xml_kind kind;
    bool repeated;                  /* every occurrence collected into an array */
    const struct xml_field *fields; /* XML_KIND_GENERIC: its children's; NULL = none known */
};

static const struct xml_field port_list_fields[] = {{"port", XML_KIND_GENERIC, true, NULL}, {}};
static const struct xml_field mount_list_fields[] = {{"mount", XML_KIND_GENERIC, true, NULL}, {}};
static const struct xml_field volume_list_fields[] = {
    {"volume", XML_KIND_GENERIC, true, NULL},
    {},
};

static const struct xml_field container_fields[] = {
    {"cmd", XML_KIND_CMD, false, NULL},
    {"ports", XML_KIND_GENERIC, true, port_list_fields},
    {"mounts", XML_KIND_GENERIC, true, mount_list_fields},
    {"volumes", XML_KIND_GENERIC, true, volume_list_fields},
    {},
};

static const struct xml_field task_fields[] = {
    {"cmd", XML_KIND_CMD, false, NULL},
    {"env", XML_KIND_MAP, false, NULL},
    {"tags", XML_KIND_MAP, false, NULL},
    {"container", XML_KIND_GENERIC, false, container_fields},
    {},
};

static const struct xml_field no_fields[] = {{}};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static struct error xml_load_error; /* set once, under xml_once */

static void xml_init(void)
{
    if (dlopen_many("libxml2.so.2", xml_syms, &xml_load_error) < 0)
        return;
    xmlInitParser();
}

static void cjson_deletep_(cJSON **j)
{
    cJSON_Delete(*j);
}

static void hashmap_freep_(struct hashmap **m)
{
    hashmap_free(*m);
}

static void xml_freep_(xmlChar **s)
{
    if (*s)
        xmlFree(*s);
}

static void xml_collect_error(void *data, xmlErrorPtr e)
{
    struct xml_errors *c = data;

    /* Keep the first fatal error: later ones are consequences of it. */
    if (!c || !e || c->have || e->level < XML_ERR_ERROR)
        return;
    c->have = true;
    c->line = e->line;
    c->column = e->int2;
    snprintf(c->msg, sizeof(c->msg), "%s", e->message ? e->message : "malformed document");
    c->msg[strcspn(c->msg, "\r\n")] = '\0';
}

/* The SAX internalSubset callback: a DOCTYPE stops the parser before any
 * markup declaration in it is read. */
static void xml_reject_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                               const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct xml_errors *c = ctxt->_private;

    if (c)
        c->doctype = true;
    xmlStopParser(ctxt);
}

static long node_line(const xmlNode *n)
{
    return xmlGetLineNo(n);
}

/* "XML: <what> <name> at line N" for the element n. */
static int node_error(struct error *err, const xmlNode *n, const char *what)
{
    return error_set(err, -EBADMSG, "XML: %s <%.64s> at line %ld", what,
                     n->name ? (const char *) n->name : "", node_line(n));
}

static bool is_blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!strchr(" \t\r\n", *s))
            return false;
    return true;
}

/* What an element holds: element children and/or non-blank text. Comments
 * and processing instructions are skipped; anything else (an entity
 * reference cannot occur without a DOCTYPE) is refused. */
static int scan_children(const xmlNode *n, bool *ret_elements, bool *ret_text, struct error *err)
{
    bool elements = false, text = false;

    for (const xmlNode *c = n->children; c; c = c->next)
        switch (c->type) {
        case XML_ELEMENT_NODE:
            elements = true;
            break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            if (!is_blank(c->content))
                text = true;
            break;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
        case XML_XINCLUDE_START:
        case XML_XINCLUDE_END:
            break;
        case XML_ATTRIBUTE_NODE:
        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_NODE:
        case XML_DOCUMENT_NODE:
        case XML_DOCUMENT_TYPE_NODE:
        case XML_DOCUMENT_FRAG_NODE:
        case XML_NOTATION_NODE:
        case XML_HTML_DOCUMENT_NODE:
        case XML_DTD_NODE:
        case XML_ELEMENT_DECL:
        case XML_ATTRIBUTE_DECL:
        case XML_ENTITY_DECL:
        case XML_NAMESPACE_DECL:
        case XML_DOCB_DOCUMENT_NODE:
        default:
            return node_error(err, n, "unexpected node in");
        }
    *ret_elements = elements;
    *ret_text = text;
    return 0;
}

/* The text of a leaf element, exactly as written; "" when empty. */
static int leaf_to_cjson(const xmlNode *n, cJSON **ret, struct error *err)
{
    _cleanup_(xml_freep_) xmlChar *s = xmlNodeGetContent(n);
    cJSON *j = cJSON_CreateString(s ? (const char *) s : "");

    if (!j)
        return error_set(err, -ENOMEM, "XML: out of memory");
    *ret = j;
    return 0;
}

static int element_to_cjson(const xmlNode *n, const struct xml_field *f, unsigned depth,
                            cJSON **ret, struct error *err);

static const struct xml_field *field_lookup(const struct xml_field *fields, const char *name)
{
    for (; fields->name; fields++)
        if (streq(fields->name, name))
            return fields;
    return NULL;
}

static int add_item(cJSON *obj, struct hashmap *seen, const char *name, cJSON *item,
                    struct error *err)
{
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return error_set(err, -ENOMEM, "XML: out of memory");
    }
    (void) hashmap_put(seen, item->string, item);
    return 0;
}

/* The element children of n as the members of an object. A name may occur
 * once, except the repeated fields, which collect every occurrence (an
 * empty one adds nothing: <mounts/> is no mounts). */
static int object_to_cjson(const xmlNode *n, const struct xml_field *fields, unsigned depth,
                           cJSON **ret, struct error *err)
{
    _cleanup_(cjson_deletep_) cJSON *obj = cJSON_CreateObject();
    _cleanup_(hashmap_freep_) struct hashmap *seen = hashmap_new();
    bool elements, text;
    int r;

    if (!obj)
        return error_set(err, -ENOMEM, "XML: out of memory");
    r = scan_children(n, &elements, &text, err);
    if (r < 0)
        return r;
    if (text)
        return node_error(err, n, "text not allowed in");

    for (const xmlNode *c = n->children; c; c = c->next) {
        const char *name = (const char *) c->name;
        const struct xml_field *f;
        cJSON *prev, *value = NULL;

        if (c->type != XML_ELEMENT_NODE)
            continue;
        f = field_lookup(fields, name);
        prev = hashmap_get(seen, name);
        if (f && f->repeated) {
            if (!prev) {
                prev = cJSON_CreateArray();
                if (!prev)
                    return error_set(err, -ENOMEM, "XML: out of memory");
                r = add_item(obj, seen, name, prev, err);
                if (r < 0)
                    return r;
            }
            r = scan_children(c, &elements, &text, err);
            if (r < 0)
                return r;
            if (!elements && !text)
                continue;
            r = element_to_cjson(c, f, depth + 1, &value, err);
            if (r < 0)
                return r;
            cJSON_AddItemToArray(prev, value);
            continue;
        }
        if (prev)
            return error_set(err, -EBADMSG, "XML: element <%.64s> repeated at line %ld", name,
                             node_line(c));
        r = element_to_cjson(c, f, depth + 1, &value, err);
        if (r < 0)
            return r;
        r = add_item(obj, seen, name, value, err);
        if (r < 0)
            return r;
    }
    *ret = TAKE_PTR(obj);
    return 0;
}

/* cmd: text for a shell command, or <arg> children for an argument vector. */
static int cmd_to_cjson(const xmlNode *n, unsigned depth, cJSON **ret, struct error *err)
{
    _cleanup_(cjson_deletep_) cJSON *arr = NULL;
    bool elements, text;
    int r;

    r = scan_children(n, &elements, &text, err);
    if (r < 0)
        return r;
    if (!elements)
        return leaf_to_cjson(n, ret, err);
    if (text)
        return node_error(err, n, "text mixed with elements in");

    arr = cJSON_CreateArray();
    if (!arr)
        return error_set(err, -ENOMEM, "XML: out of memory");
    for (const xmlNode *c = n->children; c; c = c->next) {
        cJSON *arg = NULL;
        bool sub_elements, sub_text;

        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!streq((const char *) c->name, "arg"))
            return error_set(
                err, -EBADMSG,
                "XML: <%.64s> may only contain <arg> elements, not <%.64s>, at line %ld",
                (const char *) n->name, (const char *) c->name, node_line(c));
        if (depth + 1 > XML_MAX_DEPTH)
            return node_error(err, c, "nesting too deep at");
        r = scan_children(c, &sub_elements, &sub_text, err);
        if (r < 0)
            return r;
        if (sub_elements)
            return node_error(err, c, "text expected in");
        r = leaf_to_cjson(c, &arg, err);
        if (r < 0)
            return r;
        cJSON_AddItemToArray(arr, arg);
    }
    *ret = TAKE_PTR(arr);
    return 0;
}

/* The text of the only child element of entry called name; NULL if none. */
static int entry_part(const xmlNode *entry, const char *name, const xmlNode **ret,
                      struct error *err)
{
    const xmlNode *found = NULL;

    for (const xmlNode *c = entry->children; c; c = c->next) {
        bool elements, text;
        int r;

        if (c->type != XML_ELEMENT_NODE || !streq((const char *) c->name, name))
            continue;
        if (found)
            return error_set(err, -EBADMSG, "XML: element <%.64s> repeated at line %ld", name,
                             node_line(c));
        r = scan_children(c, &elements, &text, err);
        if (r < 0)
            return r;
        if (elements)
            return node_error(err, c, "text expected in");
        found = c;
    }
    *ret = found;
    return 0;
}

static int entry_to_pair(const xmlNode *entry, xmlChar **ret_key, xmlChar **ret_value,
                         struct error *err)
{
    _cleanup_(xml_freep_) xmlChar *key = xmlGetProp(entry, (const xmlChar *) "key");
    const xmlNode *k = NULL, *v = NULL;
    bool elements, text;
    int r;

    r = scan_children(entry, &elements, &text, err);
    if (r < 0)
        return r;
    if (key) {
        /* <entry key="k">v</entry> */
        if (elements)
            return node_error(err, entry, "text expected in");
        *ret_value = xmlNodeGetContent(entry);
        *ret_key = TAKE_PTR(key);
        return 0;
    }

    /* <entry><key>k</key><value>v</value></entry> */
    if (!elements)
        return node_error(err, entry, "key attribute or <key> missing in");
    if (text)
        return node_error(err, entry, "text mixed with elements in");
    for (const xmlNode *c = entry->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !streq((const char *) c->name, "key") &&
            !streq((const char *) c->name, "value"))
            return error_set(
                err, -EBADMSG,
                "XML: <entry> may only contain <key> and <value>, not <%.64s>, at line %ld",
                (const char *) c->name, node_line(c));
    r = entry_part(entry, "key", &k, err);
    if (r < 0)
        return r;
    r = entry_part(entry, "value", &v, err);
    if (r < 0)
        return r;
    if (!k)
        return node_error(err, entry, "key attribute or <key> missing in");
    *ret_key = xmlNodeGetContent(k);
    *ret_value = v ? xmlNodeGetContent(v) : NULL;
    return 0;
}

/* env, tags: a wrapper of <entry> elements to an object. */
static int map_to_cjson(const xmlNode *n, unsigned depth, cJSON **ret, struct error *err)
{
    _cleanup_(cjson_deletep_) cJSON *obj = cJSON_CreateObject();
    _cleanup_(hashmap_freep_) struct hashmap *seen = hashmap_new();
    bool elements, text;
    int r;

    if (!obj)
        return error_set(err, -ENOMEM, "XML: out of memory");
    r = scan_children(n, &elements, &text, err);
    if (r < 0)
        return r;
    if (text)
        return node_error(err, n, "<entry> elements expected in");
    if (elements && depth + 2 > XML_MAX_DEPTH)
        return node_error(err, n, "nesting too deep at");

    for (const xmlNode *c = n->children; c; c = c->next) {
        _cleanup_(xml_freep_) xmlChar *key = NULL;
        _cleanup_(xml_freep_) xmlChar *value = NULL;
        cJSON *v;

        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!streq((const char *) c->name, "entry"))
            return error_set(
                err, -EBADMSG,
                "XML: <%.64s> may only contain <entry> elements, not <%.64s>, at line %ld",
                (const char *) n->name, (const char *) c->name, node_line(c));
        r = entry_to_pair(c, &key, &value, err);
        if (r < 0)
            return r;
        if (!key)
            return error_set(err, -ENOMEM, "XML: out of memory");
        if (hashmap_get(seen, (const char *) key))
            return error_set(err, -EBADMSG, "XML: duplicate key \"%.64s\" in <%.64s> at line %ld",
                             (const char *) key, (const char *) n->name, node_line(c));
        v = cJSON_CreateString(value ? (const char *) value : "");
        if (!v)
            return error_set(err, -ENOMEM, "XML: out of memory");
        r = add_item(obj, seen, (const char *) key, v, err);
        if (r < 0)
            return r;
    }
    *ret = TAKE_PTR(obj);
    return 0;
}

/* Converts the element n, a field f of its parent (NULL: one the reader
 * knows nothing of, a leaf or an object). */
static int element_to_cjson(const xmlNode *n, const struct xml_field *f, unsigned depth,
                            cJSON **ret, struct error *err)
{
    bool elements, text;
    int r;

    if (depth > XML_MAX_DEPTH)
        return node_error(err, n, "nesting too deep at");

    switch (f ? f->kind : XML_KIND_GENERIC) {
    case XML_KIND_CMD:
        return cmd_to_cjson(n, depth, ret, err);
    case XML_KIND_MAP:
        return map_to_cjson(n, depth, ret, err);
    case XML_KIND_GENERIC:
    default:
        r = scan_children(n, &elements, &text, err);
        if (r < 0)
            return r;
        if (!elements)
            return leaf_to_cjson(n, ret, err);
        return object_to_cjson(n, f && f->fields ? f->fields : no_fields, depth, ret, err);
    }
}

#define XSI_NAMESPACE "http://www.w3.org/2001/XMLSchema-instance"

static bool attribute_known(const xmlNode *n, const xmlAttr *a)
{
    const char *name = (const char *) a->name;
    if (!a->ns)
        return streq(name, "key") && streq((const char *) n->name, "entry");
    return a->ns->href && streq((const char *) a->ns->href, XSI_NAMESPACE) &&
           (streq(name, "schemaLocation") || streq(name, "noNamespaceSchemaLocation"));
}

/* Every element of the tree under root, in document order, has known
 * attributes only. libxml2 keeps the tree within 256 levels. */
static int check_attributes(const xmlNode *root, struct error *err)
{
    const xmlNode *n = root;
    for (;;) {
        if (n->type == XML_ELEMENT_NODE)
            for (const xmlAttr *a = n->properties; a; a = a->next)
                if (!attribute_known(n, a))
                    return error_set(err, -EBADMSG,
                                     "XML: unknown attribute \"%s%s%.64s\" on <%.64s> at line %ld",
                                     a->ns && a->ns->prefix ? (const char *) a->ns->prefix : "",
                                     a->ns && a->ns->prefix ? ":" : "", (const char *) a->name,
                                     (const char *) n->name, node_line(n));
        if (n->type == XML_ELEMENT_NODE && n->children) {
            n = n->children;
            continue;
        }
        while (n != root && !n->next)
            n = n->parent;
        if (n == root)
            return 0;
        n = n->next;
    }
}

static int doc_to_cjson(const xmlDoc *doc, cJSON **ret, struct error *err)
{
    const xmlNode *root = xmlDocGetRootElement(doc);

    if (doc->intSubset || doc->extSubset)
        return error_set(err, -EBADMSG, "XML: DOCTYPE is not allowed");
    if (!root)
        return error_set(err, -EBADMSG, "XML: no root element");
    if (!root->name || !streq((const char *) root->name, "task"))
        return error_set(err, -EBADMSG, "XML: root element must be <task>, not <%.64s>",
                         root->name ? (const char *) root->name : "");
    int r = check_attributes(root, err);
    if (r < 0)
        return r;
    return object_to_cjson(root, task_fields, 1, ret, err);
}

int task_xml_parse(const char *buf, size_t len, cJSON **ret, struct error *err)
{
    struct xml_errors errors = {};
    xmlStructuredErrorFunc saved_handler;
    void *saved_context;
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    cJSON *root = NULL;
    int r;

    if (len > INT_MAX)
        return error_set(err, -EBADMSG, "XML: document too large");
    if (!buf || len == 0)
        return error_set(err, -EBADMSG, "XML: empty document");

    (void) pthread_once(&xml_once, xml_init);
    if (xml_load_error.code < 0)
        return error_set(err, -EMEDIUMTYPE, "XML support is not available here: %s",
                         error_message(&xml_load_error));

    /* The structured error handler is per thread in libxml2: route this
     * thread's messages to us for the duration of the call. */
    saved_handler = xmlStructuredError;
    saved_context = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(&errors, xml_collect_error);

    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        xmlSetStructuredErrorFunc(saved_context, saved_handler);
        return error_set(err, -ENOMEM, "XML: out of memory");
    }
    ctxt->sax->internalSubset = xml_reject_doctype;
    ctxt->_private = &errors;

    doc = xmlCtxtReadMemory(ctxt, buf, (int) len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);

    if (errors.doctype || (doc && (doc->intSubset || doc->extSubset)))
        r = error_set(err, -EBADMSG, "XML: DOCTYPE is not allowed");
    else if (!doc && errors.have)
        r = error_set(err, -EBADMSG, "XML: %s at line %d column %d", errors.msg, errors.line,
                      errors.column);
    else if (!doc)
        r = error_set(err, -EBADMSG, "XML: malformed document");
    else
        r = doc_to_cjson(doc, &root, err);

    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    xmlSetStructuredErrorFunc(saved_context, saved_handler);
    if (r < 0)
        return r;
    *ret = root;
    return 0;
}
