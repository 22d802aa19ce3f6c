// matvec.wgsl — y = W h for one input row (decode): Q1_0 weights, f32 activations.
// A workgroup computes ROWS rows. Invocations form groups of TPR that share rows: a group takes
// 4 rows at a time, each invocation loads its 32-activation chunk of a word once and applies it
// to the 4 rows, and lanes_sum4 adds the group's partial sums. NORM: h = RMSNorm(x) * norm
// weights, computed here (no separate norm pass: every workgroup reduces x itself). RESID:
// y += W h (the residual add, in place). LASTROW: the input row is S.last (the last token of a
// prompt chunk). Output row r goes to Y[out_off + row0 + r] (row0: first row of this part of a
// split matrix).

override ROWS: u32 = 32u;
override NORM: bool = false;
override RESID: bool = false;
override LASTROW: bool = false;

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> NW: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

// This lane's share of dot(W[r], h) for rows r0 .. r0 + 3 (clamped to the matrix).
fn rows_part(r0: u32, lane: u32, x4: u32) -> vec4<f32> {
  let nw = P.cols / 32u;
  let last = P.rows - 1u;
  let a = vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last)) * P.row_bytes + P.w_off;
  var acc = vec4<f32>(0.0);
  for (var w = lane; w < nw; w += TPR) {
    var xs: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
      var xv = X[x4 + w * 8u + i];
      if (NORM) { xv *= NW[P.norm_off / 4u + w * 8u + i]; }
      xs[i] = xv;
    }
    let bo = (w >> 2u) * 18u;
    let wo = bo + 2u + (w & 3u) * 4u;
    acc += vec4<f32>(wscale(a.x + bo) * sdot32(xs, w32(a.x + wo)), wscale(a.y + bo) * sdot32(xs, w32(a.y + wo)),
                     wscale(a.z + bo) * sdot32(xs, w32(a.z + wo)), wscale(a.w + bo) * sdot32(xs, w32(a.w + wo)));
  }
  return acc;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  var x4 = P.in_off / 4u;
  if (LASTROW) { x4 += S.last * (P.in_stride / 4u); }
  var rs = 1.0;
  if (NORM) {
    var ss = 0.0;
    for (var i = tid; i < P.cols / 4u; i += 256u) { let v = X[x4 + i]; ss += dot(v, v); }
    ss = wg_sum(ss, tid);
    rs = inverseSqrt(ss / f32(P.cols) + P.eps);
  }
  let groups = 256u / TPR;
  let lane = tid % TPR;
  let grp = tid / TPR;
  for (var k = 0u; k < (ROWS + groups * 4u - 1u) / (groups * 4u); k++) {
    let rl = (k * groups + grp) * 4u;
    let tot = lanes_sum4(rows_part(wg.x * ROWS + rl, lane, x4), tid) * rs;
    for (var j = 0u; j < 4u; j++) {
      let r = wg.x * ROWS + rl + j;
      if (lane == 0u && rl + j < ROWS && r < P.rows) {
        let o = P.out_off + P.row0 + r;
        var y = tot[j];
        if (RESID) { y += Y[o]; }
        Y[o] = y;
      }
    }
  }
}
