/* serve_grammar.c — the server's constrained-output fields: OpenAI's response_format
 * ({"type": "text"}, {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name",
 * "schema", "strict"}}) and the llama.cpp-style "grammar" extension (GBNF text), checked here and
 * handed to the job as GBNF text or a JSON Schema. A malformed one is a 400 naming the field and,
 * for GBNF, the line and column. It is not a JSON Schema compiler (the library's
 * ob_json_schema_to_grammar is). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

#define BAD(param, ...) (api_error_set(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__), -1)

static const cJSON *given(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int api_constraint(const cJSON *root, job *j, api_error *err) {
    const cJSON *rf = given(root, "response_format"), *gr = given(root, "grammar");
    char *schema = NULL;
    if (rf) {
        if (!cJSON_IsObject(rf)) return BAD("response_format", "'response_format' must be an object");
        const cJSON *type = given(rf, "type");
        if (!cJSON_IsString(type))
            return BAD("response_format", "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"");
        const char *t = type->valuestring;
        const cJSON *s = NULL;
        if (!strcmp(t, "json_object")) {
            s = given(rf, "schema"); /* llama.cpp's extension: json_object with a schema */
            if (!s) schema = strdup("{\"type\":\"object\"}");
        } else if (!strcmp(t, "json_schema")) {
            const cJSON *js = given(rf, "json_schema");
            if (!cJSON_IsObject(js)) return BAD("response_format", "'response_format.json_schema' must be an object");
            const cJSON *strict = given(js, "strict");
            if (strict && !cJSON_IsBool(strict))
                return BAD("response_format", "'response_format.json_schema.strict' must be a boolean");
            s = given(js, "schema");
            if (!s) return BAD("response_format", "'response_format.json_schema.schema' is missing");
        } else if (strcmp(t, "text") != 0) {
            return BAD("response_format", "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"");
        }
        if (s) {
            if (!cJSON_IsObject(s) && !cJSON_IsBool(s)) return BAD("response_format", "the schema must be an object");
            schema = cJSON_PrintUnformatted(s);
        }
        if ((s || !strcmp(t, "json_object")) && !schema) return BAD(NULL, "out of memory");
    }
    if (gr && !cJSON_IsString(gr)) {
        free(schema);
        return BAD("grammar", "'grammar' must be a string of GBNF text");
    }
    if (gr && schema) {
        free(schema);
        return BAD("grammar", "give 'grammar' or a JSON 'response_format', not both");
    }
    if (schema) {
        char *gbnf = NULL;
        if (ob_json_schema_to_grammar(schema, &gbnf) != OB_OK) {
            free(schema);
            return BAD("response_format", "%s", ob_last_error());
        }
        free(gbnf);
        j->json_schema = schema;
    } else if (gr) {
        if (ob_grammar_check(gr->valuestring) != OB_OK) return BAD("grammar", "%s", ob_last_error());
        if (!(j->grammar = strdup(gr->valuestring))) return BAD(NULL, "out of memory");
    }
    return 0;
}
