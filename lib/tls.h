/*
 * tls: the GnuTLS side of the https listeners. libmicrohttpd runs TLS
 * (MHD_USE_TLS, through GnuTLS) with what this module checked at start:
 *
 *   - tls_check() parses an https listener's certificate, key and client
 *     CA as the daemon starts, so that a wrong file is refused then with
 *     words that name it, not by libmicrohttpd's start failing later;
 *   - TLS_PRIORITIES, the protocols and ciphers every https listener
 *     offers;
 *   - tls_client_name() makes a client certificate a principal's name on
 *     a listener with a client CA (mTLS).
 *
 * The client certificate. libmicrohttpd 0.9.75 asks a client for a
 * certificate when the listener has a client CA (GNUTLS_CERT_REQUEST),
 * but it neither requires one nor checks the one it gets: the handshake
 * completes whatever the client presents. So the router checks it, before
 * anything else, at every request on such a listener: a missing
 * certificate, one that does not chain to the client CA, one expired or
 * not yet valid, one whose extended key usage excludes TLS clients, or
 * one whose subject does not name a principal is refused with 401 and
 * words that say which (the client learns why; TLS would tell it only
 * "handshake failed"). The principal is the subject's common name (CN),
 * which must be a principal's name (policy_name_valid); a subject with no
 * CN, or with more than one, names no one. A chain that verified is
 * remembered for a minute, per listener, while its certificates are valid
 * (tls.c): a kept-alive client is not verified again at every request.
 */
#pragma once

#include "config.h"
#include "util/error.h"

/*
 * TLS 1.3 and 1.2 only; AEAD ciphers only (AES-GCM, ChaCha20-Poly1305),
 * with ECDHE key exchange (forward secrecy) under TLS 1.2; no SHA-1
 * signatures. Mozilla's "intermediate" profile without its finite-field
 * DHE suites: every TLS client of the last ten years speaks one of these.
 */
#define TLS_PRIORITIES                                                                             \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-SIGN-RSA-SHA1:"            \
    "-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1"

/* Checks an https listener's files as read (pem: their text; paths: their
 * names, for the words): cert holds at least one PEM certificate, key a
 * PEM private key that is not encrypted and belongs to cert's first
 * certificate, client_ca (if not NULL) at least one PEM certificate.
 * -EINVAL otherwise, err naming the setting and the file. */
int tls_check(const struct config_tls *paths, const struct config_tls *pem, struct error *err);

/* The principal's name that the client certificate of a TLS session
 * (gnutls_session_t, from libmicrohttpd) stands for, checked against the
 * session's trust list (the listener's client CA) now, or found among the
 * chains that verified against it lately: the subject's CN, allocated.
 * Any thread. -ENOKEY (401) when the client sent no certificate, when it
 * does not verify, or when its CN is missing, given twice or not a
 * principal's name; err says which. */
int tls_client_name(void *session, char **ret_name, struct error *err);
