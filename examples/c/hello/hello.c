/* The smallest useful activity: greets whoever is named in the input.
 *
 * Input {"name": "Ada"} -> output {"greeting": "Hello, Ada!"}.
 * An empty name is a non-retryable error of type EmptyName. */
#include <ctype.h>
#include <stdlib.h>

#include "sluice.h"

static bool blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

sluice_result sluice_activity_run(const char *input, size_t len) {
    sluice_json doc;
    char *name = NULL;
    if (!sluice_json_parse(&doc, input, len) || !sluice_json_get_string(&doc, "name", &name)) {
        sluice_json_free(&doc);
        return sluice_invalid_input("cannot decode activity input: expected {\"name\": string}");
    }
    sluice_json_free(&doc);
    if (blank(name)) {
        free(name);
        return sluice_error_non_retryable("EmptyName", "name must not be empty");
    }
    const char *fields[] = {"name", name};
    sluice_log(SLUICE_INFO, "greeting", fields, 1);
    sluice_progress(100, "greeted");
    char *greeting = sluice_json_printf("Hello, %s!", name);
    char *quoted = sluice_json_quote(greeting);
    char *output = sluice_json_printf("{\"greeting\":%s}", quoted);
    free(name);
    free(greeting);
    free(quoted);
    return sluice_ok_owned(output);
}
