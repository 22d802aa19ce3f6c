/* qk_leg_x86.h — part of the body of qk_x86.h (included by it, with its macros and helpers): the
 * activation quantisation and the legacy types' kernels of the repacked layout (Q4_0, Q8_0), for
 * AVX-512 VNNI (QK_VNNI 1) and AVX2 (QK_VNNI 0).
 *
 * Quantisation (QK_FN(quant)): qk_quant's arithmetic exactly (the same amax, d = amax / 127, codes
 * x * (127 / amax) rounded to nearest even by the default MXCSR mode, clamped to +-127, sums per
 * 16), 16 (8) floats a step: the same bytes, tested bit for bit in test_qk.c.
 */

/* ---- activations ----------------------------------------------------------------------------- */

#if QK_VNNI
static void QK_FN(quant)(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s) {
    const __m512i lim = _mm512_set1_epi32(127), nlim = _mm512_set1_epi32(-127);
    for (int b = 0; b < cols / blk; b++, x += blk, q += blk) {
        __m512 vmax = _mm512_setzero_ps();
        for (int i = 0; i < blk; i += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
        const float amax = _mm512_reduce_max_ps(vmax);
        d[b] = amax / 127.0f;
        const __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        for (int i = 0; i < blk; i += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), id));
            v = _mm512_max_epi32(_mm512_min_epi32(v, lim), nlim);
            _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(v));
            *s++ = (int16_t)_mm512_reduce_add_epi32(v);
        }
    }
}
#else
static void QK_FN(quant)(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < cols / blk; b++, x += blk, q += blk) {
        __m256 vmax = _mm256_setzero_ps();
        for (int i = 0; i < blk; i += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        d[b] = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        for (int i = 0; i < blk; i += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), id));
                v[k] = _mm256_max_epi32(_mm256_min_epi32(v[k], lim), nlim);
            }
            /* packs work per 128-bit lane: bytes come out in the order 0 4 1 5 2 6 3 7 (dwords) */
            const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(w, order));
            for (int k = 0; k < 4; k += 2) {
                const __m256i t = _mm256_add_epi32(v[k], v[k + 1]);
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
                h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
                *s++ = (int16_t)_mm_cvtsi128_si32(h);
            }
        }
    }
}
#endif
