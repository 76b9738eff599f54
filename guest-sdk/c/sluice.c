/* The Sluice C SDK: the component's export over the wit-bindgen C bindings,
 * the host calls, and JSON helpers over jsmn. See sluice.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jsmn's definitions live in this file; sluice.h declares them. */
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "activity_component.h"
#include "sluice.h"

/* --- results ------------------------------------------------------- */

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

sluice_result sluice_ok_owned(char *json) {
    sluice_result r = {.kind = SLUICE_COMPLETED, .json = json, .next_retry_delay_ms = -1};
    return r;
}

sluice_result sluice_ok(const char *json) {
    return sluice_ok_owned(dup_or_null(json));
}

sluice_result sluice_error(const char *error_type, const char *message) {
    sluice_result r = {
        .kind = SLUICE_FAILED,
        .error_type = dup_or_null(error_type ? error_type : ""),
        .message = dup_or_null(message ? message : ""),
        .next_retry_delay_ms = -1,
    };
    return r;
}

sluice_result sluice_error_non_retryable(const char *error_type, const char *message) {
    sluice_result r = sluice_error(error_type, message);
    r.non_retryable = true;
    return r;
}

sluice_result sluice_invalid_input(const char *message) {
    return sluice_error_non_retryable(SLUICE_INVALID_INPUT, message);
}

sluice_result sluice_with_details(sluice_result r, const char *json) {
    free(r.details_json);
    r.details_json = dup_or_null(json);
    return r;
}

sluice_result sluice_with_next_retry_delay(sluice_result r, uint64_t ms) {
    r.next_retry_delay_ms = ms > INT64_MAX ? INT64_MAX : (int64_t)ms;
    return r;
}

sluice_result sluice_pending(void) {
    sluice_result r = {.kind = SLUICE_PENDING, .next_retry_delay_ms = -1};
    return r;
}

sluice_result sluice_cancelled(const char *details_json) {
    sluice_result r = {.kind = SLUICE_CANCELLED, .json = dup_or_null(details_json), .next_retry_delay_ms = -1};
    return r;
}

/* --- conversions to and from the bindings ---------------------------- */

/* A malloc'd payload of JSON text; the outcome's post-return frees it. */
static void json_payload(sluice_activity_types_payload_t *p, const char *json) {
    activity_component_string_dup(&p->encoding, SLUICE_JSON);
    size_t n = strlen(json);
    p->data.ptr = malloc(n ? n : 1);
    memcpy(p->data.ptr, json, n);
    p->data.len = n;
}

static char *string_of(const activity_component_string_t *s) {
    char *out = malloc(s->len + 1);
    memcpy(out, s->ptr, s->len);
    out[s->len] = '\0';
    return out;
}

static void set_option_payload(sluice_activity_types_option_payload_t *o, const char *json) {
    o->is_some = json != NULL;
    if (json) json_payload(&o->val, json);
}

void exports_sluice_activity_activity_run(exports_sluice_activity_activity_payload_t *input,
                                          exports_sluice_activity_activity_outcome_t *ret) {
    sluice_result r;
    size_t enc_len = strlen(SLUICE_JSON);
    if (input->encoding.len != enc_len || memcmp(input->encoding.ptr, SLUICE_JSON, enc_len) != 0) {
        char *enc = string_of(&input->encoding);
        char *msg = sluice_json_printf("activity input has encoding \"%s\", expected \"%s\"", enc, SLUICE_JSON);
        r = sluice_invalid_input(msg);
        free(enc);
        free(msg);
    } else {
        /* An absent payload reads as JSON null, as in the other SDKs. */
        const char *data = input->data.len ? (const char *)input->data.ptr : "null";
        size_t len = input->data.len ? input->data.len : 4;
        char *text = malloc(len + 1);
        memcpy(text, data, len);
        text[len] = '\0';
        r = sluice_activity_run(text, len);
        free(text);
    }
    exports_sluice_activity_activity_payload_free(input);

    switch (r.kind) {
    case SLUICE_COMPLETED:
        ret->tag = SLUICE_ACTIVITY_TYPES_OUTCOME_COMPLETED;
        json_payload(&ret->val.completed, r.json ? r.json : "null");
        break;
    case SLUICE_PENDING:
        ret->tag = SLUICE_ACTIVITY_TYPES_OUTCOME_PENDING;
        break;
    case SLUICE_CANCELLED:
        ret->tag = SLUICE_ACTIVITY_TYPES_OUTCOME_CANCELLED;
        set_option_payload(&ret->val.cancelled, r.json);
        break;
    case SLUICE_FAILED:
    default:
        ret->tag = SLUICE_ACTIVITY_TYPES_OUTCOME_FAILED;
        activity_component_string_dup(&ret->val.failed.message, r.message ? r.message : "");
        activity_component_string_dup(&ret->val.failed.error_type, r.error_type ? r.error_type : "");
        ret->val.failed.non_retryable = r.non_retryable;
        set_option_payload(&ret->val.failed.details, r.details_json);
        ret->val.failed.next_retry_delay_ms.is_some = r.next_retry_delay_ms >= 0;
        ret->val.failed.next_retry_delay_ms.val = r.next_retry_delay_ms >= 0 ? (uint64_t)r.next_retry_delay_ms : 0;
        break;
    }
    free(r.json);
    free(r.error_type);
    free(r.message);
    free(r.details_json);
}

/* --- the host ------------------------------------------------------- */

sluice_info sluice_get_info(void) {
    sluice_activity_types_activity_info_t i;
    sluice_activity_context_info(&i);
    sluice_info out = {
        .activity_id = string_of(&i.activity_id),
        .run_id = string_of(&i.run_id),
        .activity_type = string_of(&i.activity_type),
        .task_queue = string_of(&i.task_queue),
        .host_task_queue = string_of(&i.host_task_queue),
        .attempt = i.attempt,
        .scheduled_time_ms = i.scheduled_time_ms,
        .current_attempt_scheduled_time_ms = i.current_attempt_scheduled_time_ms,
        .started_time_ms = i.started_time_ms,
        .schedule_to_close_deadline_ms = i.schedule_to_close_deadline_ms.is_some ? i.schedule_to_close_deadline_ms.val : 0,
        .start_to_close_deadline_ms = i.start_to_close_deadline_ms.is_some ? i.start_to_close_deadline_ms.val : 0,
        .heartbeat_timeout_ms = i.heartbeat_timeout_ms.is_some ? i.heartbeat_timeout_ms.val : 0,
    };
    sluice_activity_types_activity_info_free(&i);
    return out;
}

void sluice_info_free(sluice_info *info) {
    free(info->activity_id);
    free(info->run_id);
    free(info->activity_type);
    free(info->task_queue);
    free(info->host_task_queue);
    memset(info, 0, sizeof *info);
}

/* What the latest heartbeat answered about pausing. */
static bool last_paused = false;

bool sluice_is_paused(void) {
    return last_paused;
}

sluice_result sluice_paused(void) {
    return sluice_error("Paused", "the execution was paused; the attempt stopped and resumes when unpaused");
}

bool sluice_heartbeat(const char *details_json) {
    sluice_activity_types_payload_t details;
    sluice_activity_context_heartbeat_response_t response;
    if (details_json) {
        json_payload(&details, details_json);
        sluice_activity_context_heartbeat(&details, &response);
        sluice_activity_types_payload_free(&details);
    } else {
        sluice_activity_context_heartbeat(NULL, &response);
    }
    last_paused = response.paused;
    return response.cancel_requested;
}

char *sluice_last_heartbeat(void) {
    sluice_activity_types_payload_t details;
    if (!sluice_activity_context_last_heartbeat_details(&details)) return NULL;
    char *text = details.data.len ? malloc(details.data.len + 1) : NULL;
    if (text) {
        memcpy(text, details.data.ptr, details.data.len);
        text[details.data.len] = '\0';
    }
    sluice_activity_types_payload_free(&details);
    return text;
}

void sluice_progress(float percent, const char *message) {
    activity_component_string_t msg;
    activity_component_string_set(&msg, message ? message : "");
    sluice_activity_context_progress(percent >= 0 ? &percent : NULL, &msg);
}

char *sluice_task_token(void) {
    activity_component_string_t token;
    sluice_activity_context_task_token(&token);
    char *out = string_of(&token);
    activity_component_string_free(&token);
    return out;
}

void sluice_log(sluice_log_level level, const char *message, const char *const *fields, size_t pairs) {
    activity_component_string_t msg;
    activity_component_string_set(&msg, message ? message : "");
    activity_component_tuple2_string_string_t items[pairs ? pairs : 1];
    for (size_t i = 0; i < pairs; i++) {
        activity_component_string_set(&items[i].f0, fields[2 * i]);
        activity_component_string_set(&items[i].f1, fields[2 * i + 1]);
    }
    activity_component_list_tuple2_string_string_t list = {.ptr = items, .len = pairs};
    sluice_activity_context_log((sluice_activity_types_log_level_t)level, &msg, &list);
}

/* --- JSON ------------------------------------------------------------ */

bool sluice_json_parse(sluice_json *doc, const char *text, size_t len) {
    jsmn_parser parser;
    jsmn_init(&parser);
    int count = jsmn_parse(&parser, text, len, NULL, 0);
    doc->text = text;
    doc->tokens = NULL;
    doc->count = 0;
    if (count < 1) return false;
    doc->tokens = calloc((size_t)count, sizeof(jsmntok_t));
    jsmn_init(&parser);
    doc->count = jsmn_parse(&parser, text, len, doc->tokens, (unsigned)count);
    return doc->count == count;
}

void sluice_json_free(sluice_json *doc) {
    free(doc->tokens);
    doc->tokens = NULL;
    doc->count = 0;
}

/* The token of top-level field `key`, or -1. */
static int field(const sluice_json *doc, const char *key) {
    if (doc->count < 1 || doc->tokens[0].type != JSMN_OBJECT) return -1;
    size_t key_len = strlen(key);
    for (int i = 1; i + 1 < doc->count; i++) {
        const jsmntok_t *t = &doc->tokens[i];
        if (t->parent != 0 || t->type != JSMN_STRING) continue;
        /* Keys with escapes never match a plain C key; fine for field names. */
        if ((size_t)(t->end - t->start) == key_len && memcmp(doc->text + t->start, key, key_len) == 0)
            return i + 1;
    }
    return -1;
}

static bool is_null(const sluice_json *doc, int i) {
    const jsmntok_t *t = &doc->tokens[i];
    return t->type == JSMN_PRIMITIVE && doc->text[t->start] == 'n';
}

bool sluice_json_has(const sluice_json *doc, const char *key) {
    int i = field(doc, key);
    return i >= 0 && !is_null(doc, i);
}

/* Appends code point `cp` to `out` as UTF-8. */
static char *put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xC0 | (cp >> 6));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xE0 | (cp >> 12));
        *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (char)(0xF0 | (cp >> 18));
        *out++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    }
    return out;
}

static uint32_t hex4(const char *s) {
    char buf[5] = {s[0], s[1], s[2], s[3], 0};
    return (uint32_t)strtoul(buf, NULL, 16);
}

bool sluice_json_get_string(const sluice_json *doc, const char *key, char **out) {
    int i = field(doc, key);
    if (i < 0 || doc->tokens[i].type != JSMN_STRING) return false;
    const char *s = doc->text + doc->tokens[i].start;
    const char *end = doc->text + doc->tokens[i].end;
    char *buf = malloc((size_t)(end - s) + 1), *o = buf;
    /* jsmn checked the escapes in strict mode; undo them. */
    while (s < end) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s++) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(s);
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                uint32_t low = hex4(s + 2);
                if (low >= 0xDC00 && low < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    s += 6;
                }
            }
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = s[-1]; break; /* \" \\ \/ */
        }
    }
    *o = '\0';
    *out = buf;
    return true;
}

bool sluice_json_get_u64(const sluice_json *doc, const char *key, uint64_t *out) {
    int i = field(doc, key);
    if (i < 0 || doc->tokens[i].type != JSMN_PRIMITIVE) return false;
    const char *s = doc->text + doc->tokens[i].start;
    if (*s < '0' || *s > '9') return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end != doc->text + doc->tokens[i].end) return false; /* fractions, exponents */
    *out = v;
    return true;
}

bool sluice_json_get_bool(const sluice_json *doc, const char *key, bool *out) {
    int i = field(doc, key);
    if (i < 0 || doc->tokens[i].type != JSMN_PRIMITIVE) return false;
    char c = doc->text[doc->tokens[i].start];
    if (c != 't' && c != 'f') return false;
    *out = c == 't';
    return true;
}

char *sluice_json_quote(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 3), *o = out;
    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        default:
            if (c < 0x20) o += sprintf(o, "\\u%04x", c);
            else *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

char *sluice_json_printf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    char *out = malloc(n > 0 ? (size_t)n + 1 : 1);
    va_start(args, format);
    vsnprintf(out, (size_t)n + 1, format, args);
    va_end(args);
    return out;
}
