;; Event-driven drives of a dense layer (models/network/event-drives.ts) as WebAssembly SIMD loops.
;;
;; Same arithmetic as the TypeScript kernels, four float32 columns at a time. All pointers are
;; byte offsets into the exported memory; every row holds C float32 with C a multiple of 4 (the
;; caller pads). Layouts: bin, frac [batch, nIn]; w, dW [nIn, C]; out, dy [batch, bins, C];
;; dT [batch, nIn]; rc [bins, C] scratch.
(module
  (memory (export "memory") 1)

  ;; dst[c] += s * src[c], n bytes
  (func $axpy (param $dst i32) (param $src i32) (param $n i32) (param $s f32)
    (local $c i32) (local $sv v128)
    (local.set $sv (f32x4.splat (local.get $s)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $c) (local.get $n)))
        (v128.store (i32.add (local.get $dst) (local.get $c))
          (f32x4.add
            (v128.load (i32.add (local.get $dst) (local.get $c)))
            (f32x4.mul (local.get $sv) (v128.load (i32.add (local.get $src) (local.get $c))))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $next))))

  ;; d1[c] += f * src[c]; d2[c] += g * src[c], n bytes
  (func $axpy2 (param $d1 i32) (param $d2 i32) (param $src i32) (param $n i32) (param $f f32) (param $g f32)
    (local $c i32) (local $fv v128) (local $gv v128) (local $x v128)
    (local.set $fv (f32x4.splat (local.get $f)))
    (local.set $gv (f32x4.splat (local.get $g)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $c) (local.get $n)))
        (local.set $x (v128.load (i32.add (local.get $src) (local.get $c))))
        (v128.store (i32.add (local.get $d1) (local.get $c))
          (f32x4.add (v128.load (i32.add (local.get $d1) (local.get $c))) (f32x4.mul (local.get $fv) (local.get $x))))
        (v128.store (i32.add (local.get $d2) (local.get $c))
          (f32x4.add (v128.load (i32.add (local.get $d2) (local.get $c))) (f32x4.mul (local.get $gv) (local.get $x))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $next))))

  ;; dst[c] += f * s1[c] + g * s2[c], n bytes
  (func $axpby (param $dst i32) (param $s1 i32) (param $s2 i32) (param $n i32) (param $f f32) (param $g f32)
    (local $c i32) (local $fv v128) (local $gv v128)
    (local.set $fv (f32x4.splat (local.get $f)))
    (local.set $gv (f32x4.splat (local.get $g)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $c) (local.get $n)))
        (v128.store (i32.add (local.get $dst) (local.get $c))
          (f32x4.add
            (v128.load (i32.add (local.get $dst) (local.get $c)))
            (f32x4.add
              (f32x4.mul (local.get $fv) (v128.load (i32.add (local.get $s1) (local.get $c))))
              (f32x4.mul (local.get $gv) (v128.load (i32.add (local.get $s2) (local.get $c)))))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $next))))

  ;; dst[c] = a[c] + b[c], n bytes
  (func $add (param $dst i32) (param $a i32) (param $b i32) (param $n i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $c) (local.get $n)))
        (v128.store (i32.add (local.get $dst) (local.get $c))
          (f32x4.add (v128.load (i32.add (local.get $a) (local.get $c))) (v128.load (i32.add (local.get $b) (local.get $c)))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $next))))

  ;; sum over c of a[c] * b[c], n bytes
  (func $dot (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $c i32) (local $acc v128)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $c) (local.get $n)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $c))) (v128.load (i32.add (local.get $b) (local.get $c))))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $next)))
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))

  ;; out (zeroed by the caller) = cumsum over bins of the per-bin increments of every input.
  (func (export "forward")
    (param $bin i32) (param $frac i32) (param $w i32) (param $out i32)
    (param $batch i32) (param $nIn i32) (param $C i32) (param $bins i32)
    (local $b i32) (local $j i32) (local $m i32) (local $k i32) (local $idx i32)
    (local $rowBytes i32) (local $base i32) (local $row i32) (local $o1 i32) (local $f f32)
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
        (local.set $base (i32.add (local.get $out) (i32.mul (i32.mul (local.get $b) (local.get $bins)) (local.get $rowBytes))))
        (local.set $j (i32.const 0))
        (block $jDone
          (loop $jNext
            (br_if $jDone (i32.ge_u (local.get $j) (local.get $nIn)))
            (local.set $idx (i32.shl (i32.add (i32.mul (local.get $b) (local.get $nIn)) (local.get $j)) (i32.const 2)))
            (local.set $k (i32.load (i32.add (local.get $bin) (local.get $idx))))
            (if (i32.lt_s (local.get $k) (local.get $bins))
              (then
                (local.set $row (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $rowBytes))))
                (if (i32.lt_s (local.get $k) (i32.const 0))
                  (then (call $axpy (local.get $base) (local.get $row) (local.get $rowBytes) (f32.const 1)))
                  (else
                    (local.set $f (f32.load (i32.add (local.get $frac) (local.get $idx))))
                    (local.set $o1 (i32.add (local.get $base) (i32.mul (local.get $k) (local.get $rowBytes))))
                    (if (i32.lt_s (i32.add (local.get $k) (i32.const 1)) (local.get $bins))
                      (then (call $axpy2 (local.get $o1) (i32.add (local.get $o1) (local.get $rowBytes)) (local.get $row)
                              (local.get $rowBytes) (local.get $f) (f32.sub (f32.const 1) (local.get $f))))
                      (else (call $axpy (local.get $o1) (local.get $row) (local.get $rowBytes) (local.get $f))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jNext)))
        (local.set $m (i32.const 1))
        (block $mDone
          (loop $mNext
            (br_if $mDone (i32.ge_u (local.get $m) (local.get $bins)))
            (local.set $o1 (i32.add (local.get $base) (i32.mul (local.get $m) (local.get $rowBytes))))
            (call $add (local.get $o1) (local.get $o1) (i32.sub (local.get $o1) (local.get $rowBytes)) (local.get $rowBytes))
            (local.set $m (i32.add (local.get $m) (i32.const 1)))
            (br $mNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; dW (zeroed by the caller) += adjoint of forward; dT[b, j] = -(dy[b, bin] . w[j]) / dt when inputGrad.
  (func (export "backward")
    (param $bin i32) (param $frac i32) (param $w i32) (param $dy i32) (param $dW i32) (param $dT i32) (param $rc i32)
    (param $batch i32) (param $nIn i32) (param $C i32) (param $bins i32) (param $dt f32) (param $inputGrad i32)
    (local $b i32) (local $j i32) (local $m i32) (local $k i32) (local $idx i32) (local $f f32)
    (local $rowBytes i32) (local $ybase i32) (local $row i32) (local $o1 i32)
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
        (local.set $ybase (i32.add (local.get $dy) (i32.mul (i32.mul (local.get $b) (local.get $bins)) (local.get $rowBytes))))
        ;; Adjoint of the cumulative sum: rc[m] = dy[m] + rc[m + 1], rc[bins - 1] = dy[bins - 1].
        (local.set $m (i32.sub (local.get $bins) (i32.const 1)))
        (local.set $o1 (i32.mul (local.get $m) (local.get $rowBytes)))
        (memory.copy (i32.add (local.get $rc) (local.get $o1)) (i32.add (local.get $ybase) (local.get $o1)) (local.get $rowBytes))
        (block $mDone
          (loop $mNext
            (br_if $mDone (i32.le_s (local.get $m) (i32.const 0)))
            (local.set $m (i32.sub (local.get $m) (i32.const 1)))
            (local.set $o1 (i32.mul (local.get $m) (local.get $rowBytes)))
            (call $add (i32.add (local.get $rc) (local.get $o1)) (i32.add (local.get $ybase) (local.get $o1))
              (i32.add (i32.add (local.get $rc) (local.get $o1)) (local.get $rowBytes)) (local.get $rowBytes))
            (br $mNext)))
        (local.set $j (i32.const 0))
        (block $jDone
          (loop $jNext
            (br_if $jDone (i32.ge_u (local.get $j) (local.get $nIn)))
            (local.set $idx (i32.shl (i32.add (i32.mul (local.get $b) (local.get $nIn)) (local.get $j)) (i32.const 2)))
            (local.set $k (i32.load (i32.add (local.get $bin) (local.get $idx))))
            (if (i32.lt_s (local.get $k) (local.get $bins))
              (then
                (local.set $row (i32.mul (local.get $j) (local.get $rowBytes)))
                (if (i32.lt_s (local.get $k) (i32.const 0))
                  (then (call $axpy (i32.add (local.get $dW) (local.get $row)) (local.get $rc) (local.get $rowBytes) (f32.const 1)))
                  (else
                    (local.set $f (f32.load (i32.add (local.get $frac) (local.get $idx))))
                    (local.set $o1 (i32.mul (local.get $k) (local.get $rowBytes)))
                    (if (i32.lt_s (i32.add (local.get $k) (i32.const 1)) (local.get $bins))
                      (then (call $axpby (i32.add (local.get $dW) (local.get $row))
                              (i32.add (local.get $rc) (local.get $o1)) (i32.add (i32.add (local.get $rc) (local.get $o1)) (local.get $rowBytes))
                              (local.get $rowBytes) (local.get $f) (f32.sub (f32.const 1) (local.get $f))))
                      (else (call $axpy (i32.add (local.get $dW) (local.get $row)) (i32.add (local.get $rc) (local.get $o1))
                              (local.get $rowBytes) (local.get $f))))
                    (if (local.get $inputGrad)
                      (then
                        (f32.store (i32.add (local.get $dT) (local.get $idx))
                          (f32.div
                            (f32.neg (call $dot (i32.add (local.get $ybase) (local.get $o1)) (i32.add (local.get $w) (local.get $row)) (local.get $rowBytes)))
                            (local.get $dt)))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext)))))
