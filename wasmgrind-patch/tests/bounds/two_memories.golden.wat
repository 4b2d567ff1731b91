(module
  (type (;0;) (func (param i32 i32 i32)))
  (type (;1;) (func (param i32)))
  (import "env" "memory" (memory (;0;) 1 100 shared))
  (memory $private (;1;) 1)
  (export "copy_from_private" (func 0))
  (export "copy_to_private" (func 1))
  (export "private_fill" (func 2))
  (func (;0;) (type 0) (param $to i32) (param $from i32) (param $len i32)
    (local i32 i32 i32)
    local.get $to
    local.get $from
    local.get $len
    local.set 5
    local.set 4
    local.set 3
    local.get 3
    i64.extend_i32_u
    local.get 5
    i64.extend_i32_u
    i64.add
    memory.size
    i64.extend_i32_u
    i64.const 16
    i64.shl
    i64.gt_u
    if ;; label = @1
      i32.const 0
      memory.grow
      drop
    end
    local.get 3
    local.get 4
    local.get 5
    memory.copy 0 $private
  )
  (func (;1;) (type 0) (param $to i32) (param $from i32) (param $len i32)
    (local i32 i32 i32)
    local.get $to
    local.get $from
    local.get $len
    local.set 5
    local.set 4
    local.set 3
    local.get 4
    i64.extend_i32_u
    local.get 5
    i64.extend_i32_u
    i64.add
    memory.size
    i64.extend_i32_u
    i64.const 16
    i64.shl
    i64.gt_u
    if ;; label = @1
      i32.const 0
      memory.grow
      drop
    end
    local.get 3
    local.get 4
    local.get 5
    memory.copy $private 0
  )
  (func (;2;) (type 1) (param $at i32)
    local.get $at
    i32.const 0
    i32.const 4
    memory.fill $private
  )
)
