/*
 * jwt: the token slurmrestd's auth/jwt takes in X-SLURM-USER-TOKEN, signed
 * here with the cluster's key (AuthAltParameters=jwt_key=...), so the
 * proxy needs no `scontrol token` and can renew its token itself. It is
 * the token `scontrol token` makes, byte for byte: the header
 * {"alg":"HS256","typ":"JWT"}, the claims {"exp","iat","sun"} in that
 * order, base64url without padding, HMAC-SHA256 (RFC 7519, RFC 7515).
 * A token of root or SlurmUser lets the proxy act for any user named in
 * X-SLURM-USER-NAME; the key is as powerful as root on the cluster.
 */
#include "slurm-internal.h"

#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <stdio.h>

/* base64url of data, without padding, appended to f. */
static void put_b64url(FILE *f, const void *data, size_t len)
{
    struct base64_encode_ctx ctx;
    char *out = xmalloc(BASE64_ENCODE_LENGTH(len) + BASE64_ENCODE_FINAL_LENGTH);
    base64url_encode_init(&ctx);
    size_t n = base64_encode_update(&ctx, out, len, data);
    n += base64_encode_final(&ctx, out + n);
    while (n > 0 && out[n - 1] == '=')
        n--;
    fwrite(out, 1, n, f);
    free(out);
}

char *slurm_jwt_sign(const uint8_t *key, size_t key_len, const char *user, int64_t iat,
                     int64_t lifespan)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *buf = NULL;
    size_t len = 0;

    cJSON *claims = cJSON_CreateObject();
    cJSON_AddNumberToObject(claims, "exp", (double) (iat + lifespan));
    cJSON_AddNumberToObject(claims, "iat", (double) iat);
    cJSON_AddStringToObject(claims, "sun", user);
    _cleanup_free_ char *payload = cJSON_PrintUnformatted(claims);
    cJSON_Delete(claims);
    if (!payload)
        abort(); /* out of memory, as xmalloc */

    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    put_b64url(f, header, strlen(header));
    fputc('.', f);
    put_b64url(f, payload, strlen(payload));
    fflush(f);

    struct hmac_sha256_ctx ctx;
    uint8_t mac[SHA256_DIGEST_SIZE];
    hmac_sha256_set_key(&ctx, key_len, key);
    hmac_sha256_update(&ctx, len, (const uint8_t *) buf); /* header.payload */
    hmac_sha256_digest(&ctx, sizeof(mac), mac);
    fputc('.', f);
    put_b64url(f, mac, sizeof(mac));
    if (fclose(f) != 0)
        abort();
    return buf;
}
