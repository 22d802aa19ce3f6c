/* json_schema.h — JSON Schema compiled to a GBNF grammar (grammar.c runs it).
 *
 * Covers what structured output needs: type (one or a list), properties, required,
 * additionalProperties, enum, const, items, prefixItems, minItems, maxItems, nested objects,
 * anyOf, oneOf (as anyOf), allOf of one schema, $ref to #/$defs/... or #/definitions/... (and #),
 * string minLength/maxLength and the formats date, time, date-time, uuid, email; integer and
 * number (minimum 0 or 1 only). A keyword that would constrain values and cannot be enforced
 * (pattern, maximum, multipleOf, not, uniqueItems ...) is refused with a message naming it and
 * where it is, rather than ignored. It is not a validator.
 */
#ifndef OB_JSON_SCHEMA_H
#define OB_JSON_SCHEMA_H

#include <stddef.h>

/* schema: JSON text (len bytes). *out: malloc'ed GBNF text whose start rule is root. 0, or -1 with
 * a message (the byte offset for malformed JSON, the schema path for an unsupported keyword). */
int json_schema_to_gbnf(const char *schema, size_t len, char **out, char *err, size_t errlen);

#endif
