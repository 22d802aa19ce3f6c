// red_sg.wgsl — the same reductions as red_wg.wgsl with subgroup operations. The host uses this
// variant only after probing that subgroups have exactly TPR invocations, laid out contiguously
// by local_invocation_index (web/gpu.mjs); it prepends `enable subgroups;`.

override TPR: u32 = 32u;  // = the subgroup size

var<workgroup> red_buf: array<f32, 256>;

fn lanes_sum(v: f32, tid: u32) -> f32 {
  return subgroupAdd(v);
}

fn lanes_sum4(v: vec4<f32>, tid: u32) -> vec4<f32> {
  return subgroupAdd(v);
}

fn lanes_max(v: f32, tid: u32) -> f32 {
  return subgroupMax(v);
}

fn wg_sum(v: f32, tid: u32) -> f32 {
  let s = subgroupAdd(v);
  if (tid % TPR == 0u) { red_buf[tid / TPR] = s; }
  workgroupBarrier();
  var t = 0.0;
  for (var i = 0u; i < 256u / TPR; i++) { t += red_buf[i]; }
  workgroupBarrier();
  return t;
}

// Two sums at once (one pair of barriers instead of two).
var<workgroup> red_buf2: array<vec2<f32>, 256u / TPR>;
fn wg_sum2(v: vec2<f32>, tid: u32) -> vec2<f32> {
  let s = subgroupAdd(v);
  if (tid % TPR == 0u) { red_buf2[tid / TPR] = s; }
  workgroupBarrier();
  var t = vec2<f32>(0.0);
  for (var i = 0u; i < 256u / TPR; i++) { t += red_buf2[i]; }
  workgroupBarrier();
  return t;
}

fn wg_max(v: f32, tid: u32) -> f32 {
  let s = subgroupMax(v);
  if (tid % TPR == 0u) { red_buf[tid / TPR] = s; }
  workgroupBarrier();
  var t = red_buf[0];
  for (var i = 1u; i < 256u / TPR; i++) { t = max(t, red_buf[i]); }
  workgroupBarrier();
  return t;
}
