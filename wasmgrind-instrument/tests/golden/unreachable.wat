(module
  (type (;0;) (func (result i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32 i32 i32 i32)))
  (type (;3;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 2) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 2) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 3) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $dead_after_unreachable (;3;) (type 0) (result i32)
    (local i32 i32 i32 i32)
    unreachable
    local.tee 0
    i32.load
    local.get 0
    i32.const 4
    i32.const 0
    i32.const 0
    call 0
    local.set 1
    local.tee 0
    local.get 1
    i32.store
    local.get 0
    i32.const 4
    i32.const 0
    i32.const 1
    call 1
    i32.const 0
    local.set 2
    local.set 1
    local.tee 0
    local.get 0
    call 2
    local.get 1
    local.get 2
    i32.atomic.rmw.cmpxchg
    local.tee 3
    local.get 3
    local.get 1
    i32.eq
    if ;; label = @1
      local.get 0
      i32.const 4
      i32.const 2
      i32.const 2
      call 1
    else
      local.get 0
      i32.const 4
      i32.const 1
      i32.const 2
      call 0
    end
  )
  (func $dead_after_br (;4;) (type 1) (param $p i32)
    (local i32 f64 i32 i32 i64)
    block ;; label = @1
      br 0 (;@1;)
      local.set 2
      local.tee 1
      local.get 2
      f64.store offset=8
      local.get 1
      i32.const 8
      i32.add
      i32.const 8
      i32.const 0
      i32.const 3
      call 1
      local.set 4
      local.set 3
      local.tee 1
      local.get 3
      local.get 4
      memory.fill
      local.get 1
      local.get 4
      i32.const 0
      i32.const 4
      call 1
    end
    local.get $p
    return
    local.set 5
    local.tee 1
    local.get 1
    call 2
    local.get 5
    i64.atomic.rmw.add
    local.get 1
    i32.const 8
    i32.const 2
    i32.const 5
    call 1
    drop
  )
  (func $dead_wait (;5;) (type 0) (result i32)
    (local i32 i64 i64)
    unreachable
    local.set 1
    local.set 2
    local.tee 0
    local.get 0
    i32.const 8
    i32.const 1
    i32.const 6
    call 0
    local.get 2
    local.get 1
    memory.atomic.wait64
  )
  (@custom "wasmgrind.patch" (after code) "\06\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\07\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 dead_after_unreachable +0x4 i32.load
;; 1: 0 dead_after_unreachable +0x7 i32.store
;; 2: 0 dead_after_unreachable +0xc i32.atomic.rmw.cmpxchg
;; 3: 1 dead_after_br +0x17 f64.store offset=8
;; 4: 1 dead_after_br +0x1a memory.fill
;; 5: 1 dead_after_br +0x21 i64.atomic.rmw.add
;; 6: 2 dead_wait +0x2a memory.atomic.wait64
