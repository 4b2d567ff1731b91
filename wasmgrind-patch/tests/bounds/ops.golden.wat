(module
  (type (;0;) (func (param i32 i32)))
  (type (;1;) (func (param i32 i32 i32)))
  (type (;2;) (func (param i32)))
  (type (;3;) (func (param i32) (result i32)))
  (type (;4;) (func))
  (import "env" "memory" (memory (;0;) 1 100 shared))
  (export "fill" (func 0))
  (export "copy" (func 1))
  (export "init" (func 2))
  (export "notify" (func 3))
  (export "after_unreachable" (func 4))
  (export "load" (func 5))
  (func (;0;) (type 0) (param $at i32) (param $len i32)
    (local $kept i64) (local i32 i32 i32)
    local.get $at
    i32.const 0
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
    memory.fill
  )
  (func (;1;) (type 1) (param $to i32) (param $from i32) (param $len i32)
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
    memory.copy
  )
  (func (;2;) (type 2) (param $at i32)
    (local i32 i32 i32)
    local.get $at
    i32.const 0
    i32.const 3
    local.set 3
    local.set 2
    local.set 1
    local.get 1
    i64.extend_i32_u
    local.get 3
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
    local.get 1
    local.get 2
    local.get 3
    memory.init $bytes
  )
  (func (;3;) (type 3) (param $at i32) (result i32)
    (local i32 i32 i32)
    local.get $at
    i32.const 1
    local.set 2
    local.set 1
    local.get 1
    i64.extend_i32_u
    i64.const 12
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
    local.get 1
    local.get 2
    memory.atomic.notify offset=8
  )
  (func (;4;) (type 4)
    (local i32 i32 i32)
    unreachable
    local.set 2
    local.set 1
    local.set 0
    local.get 0
    i64.extend_i32_u
    local.get 2
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
    local.get 0
    local.get 1
    local.get 2
    memory.fill
  )
  (func (;5;) (type 3) (param $at i32) (result i32)
    local.get $at
    i32.load
  )
  (data $bytes (;0;) "abc")
)
