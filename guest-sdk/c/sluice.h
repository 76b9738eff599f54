/*
 * Write Sluice activities in C.
 *
 * A C activity defines one function, `sluice_activity_run`, which receives
 * the input JSON text and returns a `sluice_result`:
 *
 *     #include "sluice.h"
 *
 *     sluice_result sluice_activity_run(const char *input, size_t len) {
 *         sluice_json doc;
 *         char *name = NULL;
 *         if (!sluice_json_parse(&doc, input, len) || !sluice_json_get_string(&doc, "name", &name))
 *             return sluice_invalid_input("expected {\"name\": string}");
 *         sluice_progress(100, "greeted");
 *         return sluice_ok_owned(sluice_json_printf("{\"greeting\":%s}", ...));
 *     }
 *
 * Results: sluice_ok (completed with JSON), sluice_error (failed; retried
 * unless made non-retryable), sluice_pending (completed later over gRPC),
 * sluice_cancelled (acknowledges a cancellation sluice_heartbeat reported),
 * sluice_paused (stops an attempt whose execution was paused).
 *
 * Strings the SDK returns are malloc'd and yours to free. Each attempt runs
 * in a fresh instance, so a leak lasts one attempt at most.
 *
 * Build with `sluice build <folder>`; the folder holds your .c files.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* jsmn (Debian's libjsmn-dev), strict and with parent links: the same
 * options in every file, since they change its token layout. */
#define JSMN_HEADER
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Encoding tag of JSON payloads, the default everywhere. */
#define SLUICE_JSON "json/plain"
/* Error type of an input that cannot be decoded (not retryable). */
#define SLUICE_INVALID_INPUT "InvalidInput"
/* Error type of a result or details that cannot be encoded. */
#define SLUICE_ENCODING_ERROR "EncodingError"

typedef enum {
    SLUICE_COMPLETED,
    SLUICE_PENDING,
    SLUICE_FAILED,
    SLUICE_CANCELLED,
} sluice_outcome_kind;

/* How an attempt ends. Make one with the constructors below. */
typedef struct {
    sluice_outcome_kind kind;
    char *json;            /* COMPLETED: the result; CANCELLED: details or NULL */
    char *error_type;      /* FAILED */
    char *message;         /* FAILED */
    bool non_retryable;    /* FAILED */
    char *details_json;    /* FAILED: details or NULL */
    int64_t next_retry_delay_ms; /* FAILED: < 0 means the retry policy decides */
} sluice_result;

/* The activity: the guest defines it. `input` is the input JSON text,
 * NUL-terminated, `len` bytes long ("null" when there was no input). */
sluice_result sluice_activity_run(const char *input, size_t len);

/* Completed with a copy of `json` (which must be valid JSON). */
sluice_result sluice_ok(const char *json);
/* Completed with `json`, a malloc'd string the SDK takes over. */
sluice_result sluice_ok_owned(char *json);
/* Failed with an application error; retryable. */
sluice_result sluice_error(const char *error_type, const char *message);
/* Failed with an application error that fails the execution at once. */
sluice_result sluice_error_non_retryable(const char *error_type, const char *message);
/* A non-retryable InvalidInput error. */
sluice_result sluice_invalid_input(const char *message);
/* Attaches JSON details to a failure (copied). */
sluice_result sluice_with_details(sluice_result r, const char *json);
/* Overrides the retry policy's delay before the next attempt, once. */
sluice_result sluice_with_next_retry_delay(sluice_result r, uint64_t ms);
/* The work was handed off; another system completes it over gRPC. */
sluice_result sluice_pending(void);
/* Acknowledges a cancellation; `details_json` may be NULL. */
sluice_result sluice_cancelled(const char *details_json);
/* Stops a paused attempt (error type "Paused"; see sluice_is_paused). */
sluice_result sluice_paused(void);

/* --- the host ------------------------------------------------------ */

/* The attempt's ids, type, queue, attempt number and deadlines (ms since
 * the Unix epoch; 0 when there is none). Free with sluice_info_free. */
typedef struct {
    char *activity_id;
    char *run_id;
    char *activity_type;
    char *task_queue;
    char *host_task_queue;
    uint32_t attempt;
    uint64_t scheduled_time_ms;
    uint64_t current_attempt_scheduled_time_ms;
    uint64_t started_time_ms;
    uint64_t schedule_to_close_deadline_ms;
    uint64_t start_to_close_deadline_ms;
    uint64_t heartbeat_timeout_ms;
} sluice_info;

sluice_info sluice_get_info(void);
void sluice_info_free(sluice_info *info);

/* Records a heartbeat with `details_json` (e.g. the position reached), which
 * a retried attempt reads back with sluice_last_heartbeat; NULL keeps the
 * previous details. Returns true when cancellation was requested: stop and
 * return sluice_cancelled(...). */
bool sluice_heartbeat(const char *details_json);

/* True when the latest sluice_heartbeat answered that an operator paused the
 * execution: stop and return sluice_paused(), which the host does not count
 * against the retry policy (the next attempt runs once it is unpaused). */
bool sluice_is_paused(void);

/* The details of the latest heartbeat of this execution (from an earlier
 * attempt or earlier in this one) as malloc'd JSON text; NULL on a fresh
 * start. */
char *sluice_last_heartbeat(void);

/* Human-facing progress; a negative percent means "no percentage". */
void sluice_progress(float percent, const char *message);

/* The signed token naming this attempt, for async completion (malloc'd). */
char *sluice_task_token(void);

typedef enum {
    SLUICE_TRACE,
    SLUICE_DEBUG,
    SLUICE_INFO,
    SLUICE_WARN,
    SLUICE_ERROR,
} sluice_log_level;

/* A log record; `fields` holds `pairs` key/value pairs: k0, v0, k1, v1, ... */
void sluice_log(sluice_log_level level, const char *message, const char *const *fields, size_t pairs);

/* --- JSON, over the jsmn tokenizer ----------------------------------- */

/* A parsed JSON document. Read the top-level object's fields with the
 * getters; free with sluice_json_free. */
typedef struct {
    const char *text;
    jsmntok_t *tokens;
    int count;
} sluice_json;

/* Parses `text`; false if it is not valid JSON. */
bool sluice_json_parse(sluice_json *doc, const char *text, size_t len);
void sluice_json_free(sluice_json *doc);
/* Whether the top-level value is an object with field `key` that is not null. */
bool sluice_json_has(const sluice_json *doc, const char *key);
/* Field `key` as a malloc'd, unescaped UTF-8 string; false if absent or not a string. */
bool sluice_json_get_string(const sluice_json *doc, const char *key, char **out);
/* Field `key` as an unsigned integer; false if absent or not one. */
bool sluice_json_get_u64(const sluice_json *doc, const char *key, uint64_t *out);
/* Field `key` as a boolean; false if absent or not one. */
bool sluice_json_get_bool(const sluice_json *doc, const char *key, bool *out);
/* `s` as a JSON string literal, quotes included (malloc'd). */
char *sluice_json_quote(const char *s);
/* printf into a malloc'd string; use %s with sluice_json_quote for strings. */
char *sluice_json_printf(const char *format, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
