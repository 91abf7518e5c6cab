/*
 * tls: an https listener's files checked at start, and the principal of
 * a client certificate (tls.h), with the chains verified lately
 * remembered so that a kept-alive client is not verified again at every
 * request.
 */
#include "tls.h"
#include "policy.h"
#include "util/timeutil.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <time.h>

static gnutls_datum_t datum(const char *pem)
{
    return (gnutls_datum_t){.data = (unsigned char *) pem, .size = (unsigned) strlen(pem)};
}

/* The certificates of a PEM text: 0 with their count, or a GnuTLS error. */
static int import_certs(const char *pem, gnutls_x509_crt_t **ret, unsigned *ret_n)
{
    gnutls_datum_t d = datum(pem);
    return gnutls_x509_crt_list_import2(ret, ret_n, &d, GNUTLS_X509_FMT_PEM, 0);
}

static void free_certs(gnutls_x509_crt_t *certs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(certs[i]);
    gnutls_free(certs);
}

/* Whether key is the private key of crt's public key. */
static bool key_matches(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
    unsigned char a[64], b[64];
    size_t na = sizeof(a), nb = sizeof(b);
    return gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &na) >= 0 &&
           gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &nb) >= 0 && na == nb &&
           memcmp(a, b, na) == 0;
}

int tls_check(const struct config_tls *paths, const struct config_tls *pem, struct error *err)
{
    gnutls_x509_crt_t *certs = NULL;
    unsigned n = 0;
    int g = import_certs(pem->cert, &certs, &n);
    if (g < 0 || n == 0)
        return error_set(err, -EINVAL, "tls.cert %s: no PEM certificate in it (%s)", paths->cert,
                         g < 0 ? gnutls_strerror(g) : "empty");

    int r = 0;
    gnutls_x509_privkey_t key = NULL;
    gnutls_datum_t d = datum(pem->key);
    if (strstr(pem->key, "ENCRYPTED"))
        r = error_set(err, -EINVAL,
                      "tls.key %s: the key is encrypted; the daemon takes a key without a "
                      "passphrase (keep the file root's alone, mode 0600)",
                      paths->key);
    else if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
             (g = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
        r = error_set(err, -EINVAL, "tls.key %s: not a PEM private key (%s)", paths->key,
                      gnutls_strerror(g));
    else if (!key_matches(certs[0], key))
        r = error_set(err, -EINVAL, "tls.key %s is not the key of the certificate in tls.cert %s",
                      paths->key, paths->cert);
    if (key)
        gnutls_x509_privkey_deinit(key);
    free_certs(certs, n);
    if (r < 0 || !pem->client_ca)
        return r;

    g = import_certs(pem->client_ca, &certs, &n);
    if (g < 0 || n == 0)
        return error_set(err, -EINVAL, "tls.client_ca %s: no PEM certificate in it (%s)",
                         paths->client_ca, g < 0 ? gnutls_strerror(g) : "empty");
    free_certs(certs, n);
    return 0;
}

/* s with anything but printable ASCII as '?', at most 64 bytes: a name
 * from a certificate quoted in a message. */
static char *printable(const char *s)
{
    char *p = xstrndup(s, 64);
    for (char *c = p; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return p;
}

/* The subject's one CN of crt, allocated; -ENOKEY when there is none, or
 * more than one, or one with a NUL inside. */
static int subject_cn(gnutls_x509_crt_t crt, char **ret, struct error *err)
{
    size_t size = 0;
    int g = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, NULL, &size);
    if (g == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return error_set(err, -ENOKEY,
                         "the client certificate's subject has no CN (common name) to name a "
                         "principal");
    if (g != GNUTLS_E_SHORT_MEMORY_BUFFER)
        return error_set(err, -ENOKEY, "the client certificate's subject: %s", gnutls_strerror(g));
    _cleanup_free_ char *cn = xmalloc(size + 1);
    g = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size);
    if (g < 0)
        return error_set(err, -ENOKEY, "the client certificate's subject: %s", gnutls_strerror(g));
    cn[size] = '\0';
    size_t more = 0;
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, NULL, &more) !=
            GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
        strlen(cn) != size)
        return error_set(err, -ENOKEY,
                         "the client certificate's subject has more than one CN, or a CN that "
                         "is not text: it names no principal");
    *ret = TAKE_PTR(cn);
    return 0;
}

/*
 * Chains verified lately. Verifying a client's chain costs ~0.35 ms of
 * CPU on this project's test machine (an ECDSA signature check and the
 * chain built again), eight times what the rest of a GET costs, and a
 * kept-alive client presents the same chain at every request. So a chain
 * that verified is remembered by the SHA-256 of its certificates and of
 * the trust list it verified against (the credentials of its listener,
 * which never change while the daemon runs), with its name and the times
 * between which all of its certificates are valid: it passes again while
 * that window holds, for at most TLS_VERIFIED_TTL, then is verified anew
 * (the CA's own validity, which the window leaves out, is so at most a
 * minute stale). A chain that does not verify is never remembered: its
 * refusal is worked out, and worded, every time. The handshake proves at
 * each connection that the client holds the key of the certificate it
 * presents; only the chain's verdict is reused. A few slots, the oldest
 * replaced: a verdict not found is verified again, nothing worse.
 */
#define TLS_VERIFIED_SLOTS 64
#define TLS_VERIFIED_TTL   (60 * USEC_PER_SEC)

struct verified {
    uint8_t key[SHA256_DIGEST_SIZE];
    char name[POLICY_NAME_MAX + 1];
    time_t valid_from, valid_until; /* every certificate of the chain */
    usec_t verified_at;             /* monotonic; 0: an empty slot */
};

static pthread_mutex_t verified_lock = PTHREAD_MUTEX_INITIALIZER;
static struct verified verified[TLS_VERIFIED_SLOTS];
static size_t verified_next;

/* The cache's key of a session's chain: its credentials (the trust list)
 * and its certificates. */
static void chain_key(gnutls_session_t s, const gnutls_datum_t *peers, unsigned n,
                      uint8_t ret[static SHA256_DIGEST_SIZE])
{
    struct sha256_ctx c;
    void *cred = NULL;
    (void) gnutls_credentials_get(s, GNUTLS_CRD_CERTIFICATE, &cred);
    sha256_init(&c);
    sha256_update(&c, sizeof(cred), (const uint8_t *) &cred);
    for (unsigned i = 0; i < n; i++) {
        uint32_t size = peers[i].size;
        sha256_update(&c, sizeof(size), (const uint8_t *) &size);
        sha256_update(&c, peers[i].size, peers[i].data);
    }
    sha256_digest(&c, SHA256_DIGEST_SIZE, ret);
}

/* The remembered name of a chain, if it verified lately and all of its
 * certificates are valid now. */
static bool verified_find(const uint8_t key[static SHA256_DIGEST_SIZE], char **ret_name)
{
    usec_t now = now_monotonic();
    time_t wall = time(NULL);
    bool found = false;
    pthread_mutex_lock(&verified_lock);
    for (size_t i = 0; i < TLS_VERIFIED_SLOTS && !found; i++) {
        const struct verified *v = &verified[i];
        if (v->verified_at && memcmp(v->key, key, SHA256_DIGEST_SIZE) == 0 &&
            now - v->verified_at < TLS_VERIFIED_TTL && wall >= v->valid_from &&
            wall < v->valid_until) {
            *ret_name = xstrdup(v->name);
            found = true;
        }
    }
    pthread_mutex_unlock(&verified_lock);
    return found;
}

static void verified_add(const uint8_t key[static SHA256_DIGEST_SIZE], const char *name,
                         const gnutls_datum_t *peers, unsigned n)
{
    struct verified v = {.valid_from = 0, .valid_until = (time_t) INT64_MAX};
    memcpy(v.key, key, SHA256_DIGEST_SIZE);
    snprintf(v.name, sizeof(v.name), "%s", name);
    for (unsigned i = 0; i < n; i++) {
        gnutls_x509_crt_t crt;
        if (gnutls_x509_crt_init(&crt) < 0)
            return;
        bool ok = gnutls_x509_crt_import(crt, &peers[i], GNUTLS_X509_FMT_DER) >= 0;
        time_t from = ok ? gnutls_x509_crt_get_activation_time(crt) : (time_t) -1;
        time_t until = ok ? gnutls_x509_crt_get_expiration_time(crt) : (time_t) -1;
        gnutls_x509_crt_deinit(crt);
        if (from == (time_t) -1 || until == (time_t) -1)
            return; /* not remembered: verified again next time */
        v.valid_from = MAX(v.valid_from, from);
        v.valid_until = MIN(v.valid_until, until);
    }
    v.verified_at = now_monotonic();
    pthread_mutex_lock(&verified_lock);
    verified[verified_next] = v;
    verified_next = (verified_next + 1) % TLS_VERIFIED_SLOTS;
    pthread_mutex_unlock(&verified_lock);
}

int tls_client_name(void *session, char **ret_name, struct error *err)
{
    gnutls_session_t s = session;
    unsigned n = 0;
    const gnutls_datum_t *peers = s ? gnutls_certificate_get_peers(s, &n) : NULL;
    if (!peers || n == 0)
        return error_set(err, -ENOKEY,
                         "this listener requires a client certificate (mTLS), and none was sent");
    uint8_t key[SHA256_DIGEST_SIZE];
    chain_key(s, peers, n, key);
    if (verified_find(key, ret_name))
        return 0;

    /* The chain against the listener's client CA, at this moment (expiry),
     * for a TLS client (extended key usage, when the certificate has one). */
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT};
    unsigned status = 0;
    int g = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
    if (g < 0)
        return error_set(err, -ENOKEY, "the client certificate cannot be checked: %s",
                         gnutls_strerror(g));
    if (status != 0) {
        gnutls_datum_t text = {};
        g = gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
        _cleanup_free_ char *why =
            xstrdup(g >= 0 && text.data ? (const char *) text.data : "it does not verify");
        gnutls_free(text.data);
        for (size_t len = strlen(why); len > 0 && why[len - 1] == ' ';)
            why[--len] = '\0';
        return error_set(err, -ENOKEY, "the client certificate is refused: %s", why);
    }

    gnutls_x509_crt_t crt;
    if ((g = gnutls_x509_crt_init(&crt)) < 0)
        return error_set(err, -ENOMEM, "client certificate: %s", gnutls_strerror(g));
    _cleanup_free_ char *cn = NULL;
    g = gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER);
    int r = g < 0 ? error_set(err, -ENOKEY, "the client certificate: %s", gnutls_strerror(g))
                  : subject_cn(crt, &cn, err);
    gnutls_x509_crt_deinit(crt);
    if (r < 0)
        return r;
    if (!policy_name_valid(cn)) {
        _cleanup_free_ char *shown = printable(cn);
        return error_set(err, -ENOKEY,
                         "the client certificate's CN \"%s\" is not a principal's name (1 to %d "
                         "letters, digits and ._@-)",
                         shown, POLICY_NAME_MAX);
    }
    verified_add(key, cn, peers, n);
    *ret_name = TAKE_PTR(cn);
    return 0;
}
