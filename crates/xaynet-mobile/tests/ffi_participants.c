/* N participants through the C ABI that keep taking part until killed (at most SECONDS).
 * For the mixed-language round test: every model set is reported on stdout as
 *   SUBMIT <round seed hex> c-<i> <w0> <w1> ...
 * Usage: ffi_participants URL N SECONDS */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "xaynet_ffi.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL N SECONDS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]);
    time_t end = time(NULL) + atoi(argv[3]);
    XaynetParticipant **ps = calloc((size_t)n, sizeof *ps);
    for (int i = 0; i < n; i++) {
        XaynetSettings *s = xaynet_ffi_settings_new();
        XaynetKeyPair *k = xaynet_ffi_generate_key_pair();
        if (xaynet_ffi_settings_set_url(s, argv[1]) || xaynet_ffi_settings_set_keys(s, k) ||
            xaynet_ffi_settings_set_poll_interval_ms(s, 50)) {
            fprintf(stderr, "settings failed\n");
            return 1;
        }
        xaynet_ffi_forget_key_pair(k);
        ps[i] = xaynet_ffi_participant_new(s);
        xaynet_ffi_settings_destroy(s);
        if (!ps[i]) {
            char msg[256];
            xaynet_ffi_last_error(msg, sizeof msg);
            fprintf(stderr, "participant_new: %s\n", msg);
            return 1;
        }
    }
    while (time(NULL) < end) {
        for (int i = 0; i < n; i++) {
            int flags = xaynet_ffi_participant_tick(ps[i]);
            if (flags < 0) return 1;
            if (!(flags & XAYNET_PARTICIPANT_SHOULD_SET_MODEL)) continue;
            XaynetLocalModelConfig cfg;
            uint8_t seed[32];
            if (xaynet_ffi_participant_local_model_config(ps[i], &cfg) ||
                xaynet_ffi_participant_round_seed(ps[i], seed))
                return 1;
            float *w = malloc(cfg.len * sizeof(float));
            for (uint64_t j = 0; j < cfg.len; j++)
                w[j] = (float)((int)((j * 5 + (uint64_t)i * 17) % 90)) / 200.0f - 0.2f;
            if (xaynet_ffi_participant_set_model(ps[i], w, XAYNET_DATATYPE_F32, cfg.len)) return 1;
            printf("SUBMIT ");
            for (int b = 0; b < 32; b++) printf("%02x", seed[b]);
            printf(" c-%d", i);
            for (uint64_t j = 0; j < cfg.len; j++) printf(" %.9g", (double)w[j]);
            printf("\n");
            fflush(stdout);
            free(w);
        }
        struct timespec t = {0, 20 * 1000000L};
        nanosleep(&t, NULL);
    }
    return 0;
}
