// attention.wgsl — causal grouped-query attention over the KV cache for one (head, token) per
// workgroup: token t of the step sits at position S.pos + t and sees positions 0..S.pos + t.
// Keys go in tiles of 256 (one per invocation) with an online softmax, as the scalar reference
// does per key; q comes from the qkv buffer (already QK-normed and rotated), the result goes to
// O[t][n_head * HD]. Head h reads KV head h / (n_head / n_head_kv).

override HD: u32 = 128u;      // head dimension, <= 1024
override KV16: bool = false;

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KV: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

var<workgroup> qs: array<f32, HD>;
var<workgroup> ps: array<f32, 256>;   // softmax weights of the current tile

// Element e of the layer's cache (K from 0, V from word P.v_off).
fn kv_at(base: u32, e: u32) -> f32 {
  if (KV16) {
    let v = unpack2x16float(KV[base + e / 2u]);
    return select(v.x, v.y, (e & 1u) != 0u);
  }
  return bitcast<f32>(KV[base + e]);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let t = wg.y;
  if (t >= S.n || h >= P.n_head) { return; }
  let n_keys = min(S.pos + t + 1u, P.n_ctx);
  let kvh = h / (P.n_head / P.n_head_kv);
  let kd = P.kv_dim;
  let qb = P.q_off + t * P.q_stride + h * HD;
  for (var i = tid; i < HD; i += 256u) { qs[i] = QKV[qb + i]; }
  workgroupBarrier();
  var m = -3.0e38;
  var l = 0.0;
  var o = array<f32, 4>(0.0, 0.0, 0.0, 0.0);  // dims tid, tid + 256, ...
  for (var j0 = 0u; j0 < n_keys; j0 += 256u) {
    let j = j0 + tid;
    var s = -3.0e38;
    if (j < n_keys) {
      var d = 0.0;
      let kb = j * kd + kvh * HD;
      for (var i = 0u; i < HD; i++) { d += qs[i] * kv_at(0u, kb + i); }
      s = d * P.scale;
    }
    let mn = max(m, wg_max(s, tid));
    let e = select(0.0, exp(s - mn), j < n_keys);
    ps[tid] = e;
    let lt = wg_sum(e, tid);  // its barriers also publish ps
    let corr = exp(m - mn);
    l = l * corr + lt;
    let cnt = min(256u, n_keys - j0);
    for (var q = 0u; q < 4u; q++) {
      let i = tid + q * 256u;
      if (i < HD) {
        var acc = o[q] * corr;
        for (var c = 0u; c < cnt; c++) { acc += ps[c] * kv_at(P.v_off, (j0 + c) * kd + kvh * HD + i); }
        o[q] = acc;
      }
    }
    m = mn;
    workgroupBarrier();
  }
  let ob = t * P.n_head * HD + h * HD;
  for (var q = 0u; q < 4u; q++) {
    let i = tid + q * 256u;
    if (i < HD) { O[ob + i] = o[q] / l; }
  }
}
