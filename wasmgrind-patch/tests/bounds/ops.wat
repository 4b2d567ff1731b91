;; Every operation `refresh_bounds` checks, on a shared memory, and a function it leaves
;; alone (a plain load).
(module
  (import "env" "memory" (memory 1 100 shared))
  (data $bytes "abc")
  (func (export "fill") (param $at i32) (param $len i32) (local $kept i64)
    (memory.fill (local.get $at) (i32.const 0) (local.get $len)))
  (func (export "copy") (param $to i32) (param $from i32) (param $len i32)
    (memory.copy (local.get $to) (local.get $from) (local.get $len)))
  (func (export "init") (param $at i32)
    (memory.init $bytes (local.get $at) (i32.const 0) (i32.const 3)))
  (func (export "notify") (param $at i32) (result i32)
    (memory.atomic.notify offset=8 (local.get $at) (i32.const 1)))
  (func (export "after_unreachable")
    unreachable
    memory.fill)
  (func (export "load") (param $at i32) (result i32)
    (i32.load (local.get $at)))
)
