/*
 * Unit tests: the Slurm backend's JWT signer (backends/slurm/jwt.c). The
 * vector is real: a key made by test/slurm/setup.sh and the token
 * `scontrol token username=root lifespan=3600` printed for it, which that
 * cluster's slurmrestd accepted; the signer must make it byte for byte.
 * The key is a throwaway of a test cluster, of no use anywhere else.
 */
#include "slurm/slurm-internal.h"
#include "tap.h"

static const char key_hex[] = "4b2fc22cc2326ca37feff0c0b5274cf5ee9418463f0aa81762a818a1f6d36060";
static const char scontrol_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJleHAiOjE3OTYzNTA0ODgsImlhdCI6MTc5NjM0Njg4OCwic3VuIjoicm9vdCJ9."
    "E6_By-0a1wT3cXTst-aqF1PCbAtSC5r4WV-NaNn5rE4";

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

int main(void)
{
    uint8_t key[32];
    unhex(key_hex, key, sizeof(key));

    _cleanup_free_ char *t = slurm_jwt_sign(key, sizeof(key), "root", 1796346888, 3600);
    ok(streq(t, scontrol_token), "the token is scontrol token's, byte for byte (got %s)", t);

    /* Another key or another user: another signature. */
    key[0] ^= 1;
    _cleanup_free_ char *k = slurm_jwt_sign(key, sizeof(key), "root", 1796346888, 3600);
    ok(strncmp(k, scontrol_token, strrchr(scontrol_token, '.') - scontrol_token) == 0 &&
           !streq(k, scontrol_token),
       "another key signs the same claims differently");
    key[0] ^= 1;

    /* A name JSON must escape stays one claim: {"sun":"a\"b"}. */
    _cleanup_free_ char *q = slurm_jwt_sign(key, sizeof(key), "a\"b", 0, 60);
    ok(q && startswith(q, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                          "eyJleHAiOjYwLCJpYXQiOjAsInN1biI6ImFcImIifQ."),
       "the claims are JSON, the user's name escaped (got %s)", q);
    return tap_done();
}
