/* Counts through a range, heartbeating its position, and resumes from the
 * last heartbeat when an attempt is retried.
 *
 * Input:  {"from": 0, "to": 10, "step_ms": 0, "fail_at": null}
 * Output: {"started_at": N, "counted": M, "sum": S}, where started_at is
 * where this attempt began (the last heartbeat's "next", or "from") and sum
 * is the sum of the numbers this attempt counted. With "fail_at": K, attempt
 * 1 fails with a retryable Interrupted error on reaching K; the next attempt
 * picks up at K. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice.h"

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Where to start: the last heartbeat's "next", or `from`. */
static bool resume_point(uint64_t from, uint64_t *start) {
    char *last = sluice_last_heartbeat();
    if (!last) {
        *start = from;
        return true;
    }
    sluice_json doc;
    bool ok = sluice_json_parse(&doc, last, strlen(last)) && sluice_json_get_u64(&doc, "next", start);
    sluice_json_free(&doc);
    free(last);
    return ok;
}

sluice_result sluice_activity_run(const char *input, size_t len) {
    sluice_json doc;
    uint64_t from = 0, to = 0, step_ms = 0, fail_at = 0;
    bool ok = sluice_json_parse(&doc, input, len) && sluice_json_get_u64(&doc, "to", &to);
    if (ok && sluice_json_has(&doc, "from")) ok = sluice_json_get_u64(&doc, "from", &from);
    if (ok && sluice_json_has(&doc, "step_ms")) ok = sluice_json_get_u64(&doc, "step_ms", &step_ms);
    bool has_fail_at = ok && sluice_json_has(&doc, "fail_at");
    if (has_fail_at) ok = sluice_json_get_u64(&doc, "fail_at", &fail_at);
    sluice_json_free(&doc);
    if (!ok) {
        return sluice_invalid_input(
            "cannot decode activity input: expected {\"to\": n, \"from\"?: n, \"step_ms\"?: n, \"fail_at\"?: n}");
    }

    uint64_t start;
    if (!resume_point(from, &start)) {
        return sluice_invalid_input("cannot decode last heartbeat details: expected {\"next\": n}");
    }
    sluice_info info = sluice_get_info();
    uint32_t attempt = info.attempt;
    sluice_info_free(&info);

    uint64_t sum = 0;
    uint64_t total = to > from ? to - from : 1;
    for (uint64_t n = start; n < to; n++) {
        if (has_fail_at && n == fail_at && attempt == 1) {
            char *msg = sluice_json_printf("stopped at %" PRIu64, n);
            sluice_result r = sluice_error("Interrupted", msg);
            free(msg);
            return r;
        }
        sum += n;
        char *position = sluice_json_printf("{\"next\":%" PRIu64 "}", n + 1);
        bool cancel = sluice_heartbeat(position);
        free(position);
        if (cancel) return sluice_cancelled(NULL);
        if (sluice_is_paused()) return sluice_paused();
        char *message = sluice_json_printf("counted %" PRIu64, n + 1);
        sluice_progress((float)(n + 1 - from) * 100.0f / (float)total, message);
        free(message);
        if (step_ms > 0) sleep_ms(step_ms);
    }
    uint64_t counted = to > start ? to - start : 0;
    return sluice_ok_owned(sluice_json_printf(
        "{\"started_at\":%" PRIu64 ",\"counted\":%" PRIu64 ",\"sum\":%" PRIu64 "}", start, counted, sum));
}
