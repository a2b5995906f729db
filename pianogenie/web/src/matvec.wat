;; The decoder's one hot loop, out += K x, in WebAssembly SIMD (f32x4): 4-8x faster than the same
;; loop in scalar JS, which V8 does not vectorise. Compiled by tools/build_wasm.mjs into
;; matvec_wasm.js (bytes committed, so the app needs no build step); decoder.js owns the layout.
;;
;; K is stored transposed, K[j, r] at k + 4 (j rows + r), so each input x[j] is splatted once and
;; multiplies 16 consecutive rows held in four vector accumulators; rows must be a multiple of 16
;; (the caller pads with zero rows). Pointers are byte offsets into the imported memory.
(module
  (import "env" "memory" (memory 1))
  (func (export "matvec") (param $k i32) (param $x i32) (param $n i32) (param $rows i32) (param $out i32)
    (local $r i32) (local $p i32) (local $xp i32) (local $xend i32) (local $stride i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $xj v128)
    (local.set $stride (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $xend (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $row_block
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $p (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $a0 (v128.load offset=0 (local.get $p)))
        (local.set $a1 (v128.load offset=16 (local.get $p)))
        (local.set $a2 (v128.load offset=32 (local.get $p)))
        (local.set $a3 (v128.load offset=48 (local.get $p)))
        (local.set $p (i32.add (local.get $k) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $xp (local.get $x))
        (block $no_inputs
          (br_if $no_inputs (i32.ge_u (local.get $xp) (local.get $xend)))
          (loop $input
            (local.set $xj (v128.load32_splat (local.get $xp)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $p)) (local.get $xj))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $xj))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $p)) (local.get $xj))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $p)) (local.get $xj))))
            (local.set $p (i32.add (local.get $p) (local.get $stride)))
            (local.set $xp (i32.add (local.get $xp) (i32.const 4)))
            (br_if $input (i32.lt_u (local.get $xp) (local.get $xend)))))
        (local.set $p (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))))
        (v128.store offset=0 (local.get $p) (local.get $a0))
        (v128.store offset=16 (local.get $p) (local.get $a1))
        (v128.store offset=32 (local.get $p) (local.get $a2))
        (v128.store offset=48 (local.get $p) (local.get $a3))
        (local.set $r (i32.add (local.get $r) (i32.const 16)))
        (br $row_block)))))
