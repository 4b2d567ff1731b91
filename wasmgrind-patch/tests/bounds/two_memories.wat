;; Two memories: only accesses to the shared one are checked, so a copy from the
;; unshared memory checks its destination only, and a fill of the unshared one stays.
(module
  (import "env" "memory" (memory 1 100 shared))
  (memory $private 1)
  (func (export "copy_from_private") (param $to i32) (param $from i32) (param $len i32)
    (memory.copy 0 $private (local.get $to) (local.get $from) (local.get $len)))
  (func (export "copy_to_private") (param $to i32) (param $from i32) (param $len i32)
    (memory.copy $private 0 (local.get $to) (local.get $from) (local.get $len)))
  (func (export "private_fill") (param $at i32)
    (memory.fill $private (local.get $at) (i32.const 0) (i32.const 4)))
)
