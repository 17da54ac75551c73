/* Drives Xaynet participants through the C ABI, as a mobile host would.
 *
 * Usage: ffi_test URL
 *
 * 1. Calls every function with bad arguments and checks each error code and message.
 * 2. Runs N participants against the coordinator at URL until two global models arrived;
 *    each global model must be the plain average of the models submitted in an earlier
 *    round (the coordinator is configured so that every updater gets its model in).
 *    Participant 1 is saved, destroyed and restored whenever it made progress.
 * Exits 0 on success; prints the failed check otherwise. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xaynet_ffi.h"

#define N 8
#define MAX_ROUNDS 64

static int checks = 0;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            char msg_[512];                                                  \
            xaynet_ffi_last_error(msg_, sizeof msg_);                        \
            fprintf(stderr, "FAILED line %d: %s\n  ", __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n  last error: %s\n", msg_);                   \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* The call returned `code` and left a non-empty error message. */
#define EXPECT_ERR(call, code)                                               \
    do {                                                                     \
        int rc_ = (call);                                                    \
        CHECK(rc_ == (code), "%s returned %d, expected %d", #call, rc_, code); \
        char m_[256];                                                        \
        size_t need_ = xaynet_ffi_last_error(m_, sizeof m_);                 \
        CHECK(need_ > 1 && strlen(m_) > 0, "no error message after %s", #call); \
    } while (0)

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static float weight(int participant, uint64_t j) {
    return (float)((int)((participant * 37 + j * 11) % 200) - 100) / 100.0f;
}

static XaynetSettings *settings_for(const char *url) {
    XaynetSettings *s = xaynet_ffi_settings_new();
    CHECK(s != NULL, "settings_new");
    XaynetKeyPair *k = xaynet_ffi_generate_key_pair();
    CHECK(k != NULL, "generate_key_pair");
    CHECK(xaynet_ffi_settings_set_url(s, url) == XAYNET_OK, "set_url");
    CHECK(xaynet_ffi_settings_set_keys(s, k) == XAYNET_OK, "set_keys");
    CHECK(xaynet_ffi_forget_key_pair(k) == XAYNET_OK, "forget_key_pair");
    CHECK(xaynet_ffi_settings_set_poll_interval_ms(s, 50) == XAYNET_OK, "poll interval");
    CHECK(xaynet_ffi_settings_set_max_message_size(s, 1000) == XAYNET_OK, "max size");
    CHECK(xaynet_ffi_check_settings(s) == XAYNET_OK, "check_settings");
    return s;
}

static void bad_arguments(const char *url) {
    char msg[8];
    float buf[4] = {0};
    XaynetLocalModelConfig cfg;
    uint8_t seed[32];

    CHECK(xaynet_ffi_crypto_init() == XAYNET_OK, "crypto_init");
    EXPECT_ERR(xaynet_ffi_settings_destroy(NULL), XAYNET_ERR_NULLPTR);
    /* Truncated copy: NUL-terminated, full length reported. */
    size_t need = xaynet_ffi_last_error(msg, sizeof msg);
    CHECK(need > sizeof msg && strlen(msg) == sizeof msg - 1, "truncated last_error");
    CHECK(xaynet_ffi_last_error(NULL, 0) == need, "length query");

    XaynetSettings *s = xaynet_ffi_settings_new();
    EXPECT_ERR(xaynet_ffi_check_settings(s), XAYNET_ERR_SETTINGS_URL);
    EXPECT_ERR(xaynet_ffi_check_settings(NULL), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_settings_set_url(s, NULL), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_settings_set_url(NULL, url), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_settings_set_url(s, "not a url"), XAYNET_ERR_INVALID_URL);
    EXPECT_ERR(xaynet_ffi_settings_set_url(s, "ftp://example.org"), XAYNET_ERR_INVALID_URL);
    EXPECT_ERR(xaynet_ffi_settings_set_url(s, "http://\xff\xfe"), XAYNET_ERR_INVALID_URL);
    CHECK(xaynet_ffi_settings_set_url(s, url) == XAYNET_OK, "set_url");
    EXPECT_ERR(xaynet_ffi_check_settings(s), XAYNET_ERR_SETTINGS_KEYS);
    EXPECT_ERR(xaynet_ffi_participant_new(s) == NULL ? XAYNET_ERR_SETTINGS_KEYS : 0,
               XAYNET_ERR_SETTINGS_KEYS);

    EXPECT_ERR(xaynet_ffi_settings_set_keys(s, NULL), XAYNET_ERR_NULLPTR);
    XaynetKeyPair *k = xaynet_ffi_generate_key_pair();
    XaynetKeyPair bad = *k;
    bad.public_key[0] ^= 1;
    EXPECT_ERR(xaynet_ffi_settings_set_keys(s, &bad), XAYNET_ERR_CRYPTO_PUBLIC_KEY);
    bad = *k;
    bad.secret_key[40] ^= 1; /* the public half of libsodium's layout */
    EXPECT_ERR(xaynet_ffi_settings_set_keys(s, &bad), XAYNET_ERR_CRYPTO_SECRET_KEY);
    CHECK(xaynet_ffi_settings_set_keys(s, k) == XAYNET_OK, "set_keys");
    EXPECT_ERR(xaynet_ffi_forget_key_pair(NULL), XAYNET_ERR_NULLPTR);
    CHECK(xaynet_ffi_forget_key_pair(k) == XAYNET_OK, "forget");

    EXPECT_ERR(xaynet_ffi_settings_set_scalar(s, -1.0), XAYNET_ERR_SETTINGS_SCALAR);
    EXPECT_ERR(xaynet_ffi_settings_set_scalar(s, NAN), XAYNET_ERR_SETTINGS_SCALAR);
    EXPECT_ERR(xaynet_ffi_settings_set_scalar(NULL, 1.0), XAYNET_ERR_NULLPTR);
    CHECK(xaynet_ffi_settings_set_scalar(s, 0.5) == XAYNET_OK, "scalar");
    EXPECT_ERR(xaynet_ffi_settings_set_max_message_size(s, 10), XAYNET_ERR_SETTINGS_MAX_MESSAGE_SIZE);
    CHECK(xaynet_ffi_settings_set_max_message_size(s, 0) == XAYNET_OK, "unlimited");
    EXPECT_ERR(xaynet_ffi_settings_set_poll_interval_ms(s, 0), XAYNET_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(xaynet_ffi_settings_set_root_certificate(s, (const uint8_t *)"garbage", 7),
               XAYNET_ERR_SETTINGS_CERTIFICATE);
    EXPECT_ERR(xaynet_ffi_settings_set_root_certificate(s, NULL, 3), XAYNET_ERR_NULLPTR);
    CHECK(xaynet_ffi_check_settings(s) == XAYNET_OK, "complete settings");

    EXPECT_ERR(xaynet_ffi_participant_new(NULL) == NULL ? XAYNET_ERR_NULLPTR : 0, XAYNET_ERR_NULLPTR);
    CHECK(xaynet_ffi_participant_tick(NULL) == -XAYNET_ERR_NULLPTR, "tick(NULL)");
    EXPECT_ERR(xaynet_ffi_participant_destroy(NULL), XAYNET_ERR_NULLPTR);

    XaynetParticipant *p = xaynet_ffi_participant_new(s);
    CHECK(p != NULL, "participant_new");
    CHECK(xaynet_ffi_settings_destroy(s) == XAYNET_OK, "settings copied into the participant");
    /* No round yet. */
    EXPECT_ERR(xaynet_ffi_participant_set_model(p, buf, XAYNET_DATATYPE_F32, 4), XAYNET_ERR_SETMODEL_MODEL);
    EXPECT_ERR(xaynet_ffi_participant_local_model_config(p, &cfg), XAYNET_ERR_SETMODEL_MODEL);
    EXPECT_ERR(xaynet_ffi_participant_local_model_config(p, NULL), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_participant_round_seed(p, seed), XAYNET_ERR_SETMODEL_MODEL);
    EXPECT_ERR(xaynet_ffi_participant_round_seed(p, NULL), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_participant_global_model(p, buf, 9, 4), XAYNET_ERR_GLOBALMODEL_DATATYPE);
    EXPECT_ERR(xaynet_ffi_participant_global_model(p, NULL, XAYNET_DATATYPE_F32, 4), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_participant_global_model(NULL, buf, XAYNET_DATATYPE_F32, 4), XAYNET_ERR_NULLPTR);

    /* Now in a round: the model is checked against it. */
    int flags = xaynet_ffi_participant_tick(p);
    CHECK(flags >= 0 && (flags & 7) != 0, "tick flags %d", flags);
    CHECK(xaynet_ffi_participant_local_model_config(p, &cfg) == XAYNET_OK, "config");
    CHECK(cfg.data_type == XAYNET_DATATYPE_F32 && cfg.len > 4, "config %d %llu", cfg.data_type,
          (unsigned long long)cfg.len);
    CHECK(xaynet_ffi_participant_round_seed(p, seed) == XAYNET_OK, "round seed");
    EXPECT_ERR(xaynet_ffi_participant_set_model(p, buf, XAYNET_DATATYPE_F32, 4), XAYNET_ERR_SETMODEL_MODEL);
    EXPECT_ERR(xaynet_ffi_participant_set_model(p, buf, XAYNET_DATATYPE_F64, cfg.len), XAYNET_ERR_SETMODEL_DATATYPE);
    EXPECT_ERR(xaynet_ffi_participant_set_model(p, buf, 42, cfg.len), XAYNET_ERR_SETMODEL_DATATYPE);
    EXPECT_ERR(xaynet_ffi_participant_set_model(p, NULL, XAYNET_DATATYPE_F32, cfg.len), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_participant_set_model(NULL, buf, XAYNET_DATATYPE_F32, cfg.len), XAYNET_ERR_NULLPTR);
    EXPECT_ERR(xaynet_ffi_participant_set_model_weighted(p, buf, XAYNET_DATATYPE_F32, 4, 1.0), XAYNET_ERR_SETMODEL_MODEL);
    EXPECT_ERR(xaynet_ffi_participant_global_model(p, buf, XAYNET_DATATYPE_I64, 4), XAYNET_ERR_GLOBALMODEL_DATATYPE);
    EXPECT_ERR(xaynet_ffi_participant_global_model(p, buf, XAYNET_DATATYPE_F32, 4), XAYNET_GLOBALMODEL_NONE);

    /* Save and restore; bad restores. */
    XaynetByteBuffer *saved = xaynet_ffi_participant_save(p);
    CHECK(saved != NULL && saved->len > 32, "save");
    CHECK(xaynet_ffi_participant_save(NULL) == NULL, "save(NULL)");
    CHECK(xaynet_ffi_participant_restore(url, NULL) == NULL, "restore(NULL)");
    CHECK(xaynet_ffi_participant_restore(NULL, saved) == NULL, "restore without URL");
    uint8_t junk[5] = {1, 2, 3, 4, 5};
    XaynetByteBuffer garbage = {5, junk};
    CHECK(xaynet_ffi_participant_restore(url, &garbage) == NULL, "restore(garbage)");
    xaynet_ffi_last_error(msg, sizeof msg);
    CHECK(strlen(msg) > 0, "restore error message");
    XaynetByteBuffer negative = {-1, junk};
    CHECK(xaynet_ffi_participant_restore(url, &negative) == NULL, "negative length");
    XaynetParticipant *q = xaynet_ffi_participant_restore(url, saved);
    CHECK(q != NULL, "restore");
    CHECK(xaynet_ffi_participant_destroy(q) == XAYNET_OK, "destroy restored");
    EXPECT_ERR(xaynet_ffi_byte_buffer_destroy(NULL), XAYNET_ERR_NULLPTR);
    CHECK(xaynet_ffi_byte_buffer_destroy(saved) == XAYNET_OK, "buffer destroy");
    CHECK(xaynet_ffi_participant_destroy(p) == XAYNET_OK, "destroy");

    /* An unreachable coordinator: the global model cannot be fetched. */
    XaynetSettings *down = settings_for("http://127.0.0.1:9");
    XaynetParticipant *d = xaynet_ffi_participant_new(down);
    CHECK(d != NULL, "participant for an unreachable coordinator");
    CHECK(xaynet_ffi_participant_tick(d) >= 0, "ticks survive network errors");
    EXPECT_ERR(xaynet_ffi_participant_global_model(d, buf, XAYNET_DATATYPE_F32, 4), XAYNET_ERR_GLOBALMODEL_IO);
    xaynet_ffi_participant_destroy(d);
    xaynet_ffi_settings_destroy(down);
}

/* Models submitted per round seed. */
struct round {
    uint8_t seed[32];
    int submitted[N];
};

static struct round rounds[MAX_ROUNDS];
static int nrounds = 0;

static struct round *round_of(const uint8_t seed[32]) {
    for (int i = 0; i < nrounds; i++)
        if (memcmp(rounds[i].seed, seed, 32) == 0) return &rounds[i];
    CHECK(nrounds < MAX_ROUNDS, "too many rounds");
    memcpy(rounds[nrounds].seed, seed, 32);
    memset(rounds[nrounds].submitted, 0, sizeof rounds[nrounds].submitted);
    return &rounds[nrounds++];
}

/* Whether `global` is the average of the models submitted in some round other than `now`. */
static int is_average_of_a_round(const float *global, uint64_t len, const uint8_t now[32]) {
    for (int r = 0; r < nrounds; r++) {
        if (memcmp(rounds[r].seed, now, 32) == 0) continue;
        int n = 0;
        for (int i = 0; i < N; i++) n += rounds[r].submitted[i];
        if (n == 0) continue;
        int ok = 1;
        for (uint64_t j = 0; j < len && ok; j++) {
            double sum = 0;
            for (int i = 0; i < N; i++)
                if (rounds[r].submitted[i]) sum += weight(i, j);
            if (fabs(global[j] - sum / n) > 1e-6) ok = 0;
        }
        if (ok) return 1;
    }
    return 0;
}

static void full_rounds(const char *url) {
    XaynetParticipant *ps[N];
    for (int i = 0; i < N; i++) {
        XaynetSettings *s = settings_for(url);
        ps[i] = xaynet_ffi_participant_new(s);
        CHECK(ps[i] != NULL, "participant %d", i);
        xaynet_ffi_settings_destroy(s);
    }
    int verified = 0, restores = 0;
    time_t start = time(NULL);
    while (verified < 2) {
        CHECK(time(NULL) - start < 90, "no two global models within 90 s");
        for (int i = 0; i < N; i++) {
            int flags = xaynet_ffi_participant_tick(ps[i]);
            CHECK(flags >= 0, "tick %d", flags);
            int tasks = flags & (XAYNET_PARTICIPANT_TASK_NONE | XAYNET_PARTICIPANT_TASK_SUM |
                                 XAYNET_PARTICIPANT_TASK_UPDATE);
            CHECK(tasks == 1 || tasks == 2 || tasks == 4, "one task flag: %d", flags);
            uint8_t seed[32];
            if (flags & XAYNET_PARTICIPANT_SHOULD_SET_MODEL) {
                CHECK(flags & XAYNET_PARTICIPANT_TASK_UPDATE, "only updaters set models");
                XaynetLocalModelConfig cfg;
                CHECK(xaynet_ffi_participant_local_model_config(ps[i], &cfg) == XAYNET_OK, "cfg");
                float *m = malloc(cfg.len * sizeof(float));
                for (uint64_t j = 0; j < cfg.len; j++) m[j] = weight(i, j);
                CHECK(xaynet_ffi_participant_set_model(ps[i], m, XAYNET_DATATYPE_F32, cfg.len) == XAYNET_OK,
                      "set_model");
                free(m);
                CHECK(xaynet_ffi_participant_round_seed(ps[i], seed) == XAYNET_OK, "seed");
                round_of(seed)->submitted[i] = 1;
            }
            if (flags & XAYNET_PARTICIPANT_NEW_GLOBALMODEL) {
                XaynetLocalModelConfig cfg;
                CHECK(xaynet_ffi_participant_local_model_config(ps[i], &cfg) == XAYNET_OK, "cfg");
                float *g = malloc(cfg.len * sizeof(float));
                EXPECT_ERR(xaynet_ffi_participant_global_model(ps[i], g, XAYNET_DATATYPE_F32, cfg.len + 1),
                           XAYNET_ERR_GLOBALMODEL_LEN);
                CHECK(xaynet_ffi_participant_global_model(ps[i], g, XAYNET_DATATYPE_F32, cfg.len) == XAYNET_OK,
                      "global_model");
                CHECK(xaynet_ffi_participant_round_seed(ps[i], seed) == XAYNET_OK, "seed");
                round_of(seed);
                CHECK(is_average_of_a_round(g, cfg.len, seed),
                      "participant %d: the global model is not the average of a round's models", i);
                free(g);
                if (i == 0) {
                    verified++;
                    printf("global model %d verified (the plain average of a round's updates)\n", verified);
                }
                CHECK(!(xaynet_ffi_participant_tick(ps[i]) & XAYNET_PARTICIPANT_NEW_GLOBALMODEL),
                      "the flag is cleared once the model was read");
            }
            if (i == 1 && (flags & XAYNET_PARTICIPANT_MADE_PROGRESS)) {
                /* An app about to be suspended: save, destroy, restore. */
                XaynetByteBuffer *b = xaynet_ffi_participant_save(ps[i]);
                CHECK(b != NULL, "save");
                CHECK(xaynet_ffi_participant_destroy(ps[i]) == XAYNET_OK, "destroy");
                ps[i] = xaynet_ffi_participant_restore(url, b);
                CHECK(ps[i] != NULL, "restore");
                CHECK(xaynet_ffi_byte_buffer_destroy(b) == XAYNET_OK, "free buffer");
                restores++;
            }
        }
        sleep_ms(20);
    }
    CHECK(restores > 0, "participant 1 was saved and restored");
    for (int i = 0; i < N; i++) CHECK(xaynet_ffi_participant_destroy(ps[i]) == XAYNET_OK, "destroy");
    printf("%d rounds seen, participant 1 restored %d times\n", nrounds, restores);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s COORDINATOR_URL\n", argv[0]);
        return 2;
    }
    bad_arguments(argv[1]);
    full_rounds(argv[1]);
    printf("ok: %d checks passed\n", checks);
    return 0;
}
