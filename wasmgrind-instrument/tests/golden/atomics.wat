(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32 i32 i32 i32)))
  (type (;2;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 2) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $atomic_ops (;3;) (type 0) (param $p i32) (result i32)
    (local i32 i64 i32 i32 i32 i64 i64 i64)
    local.get $p
    local.tee 1
    local.get 1
    call 2
    i32.atomic.load
    local.get 1
    i32.const 4
    i32.const 1
    i32.const 0
    call 0
    drop
    local.get $p
    i64.const 5
    local.set 2
    local.tee 1
    local.get 1
    i32.const 8
    i32.add
    call 2
    local.get 2
    i64.atomic.store offset=8
    local.get 1
    i32.const 8
    i32.add
    i32.const 8
    i32.const 1
    i32.const 1
    call 1
    local.get $p
    i32.const 1
    local.set 3
    local.tee 1
    local.get 1
    i32.const 4
    i32.add
    call 2
    local.get 3
    i32.atomic.rmw.add offset=4
    local.get 1
    i32.const 4
    i32.add
    i32.const 4
    i32.const 2
    i32.const 2
    call 1
    drop
    local.get $p
    i64.const 1
    local.set 2
    local.tee 1
    local.get 1
    call 2
    local.get 2
    i64.atomic.rmw16.xchg_u
    local.get 1
    i32.const 2
    i32.const 2
    i32.const 3
    call 1
    drop
    local.get $p
    i32.const 0
    i32.const 1
    local.set 4
    local.set 3
    local.tee 1
    local.get 1
    call 2
    local.get 3
    local.get 4
    i32.atomic.rmw.cmpxchg
    local.tee 5
    local.get 5
    local.get 3
    i32.eq
    if ;; label = @1
      local.get 1
      i32.const 4
      i32.const 2
      i32.const 4
      call 1
    else
      local.get 1
      i32.const 4
      i32.const 1
      i32.const 4
      call 0
    end
    drop
    local.get $p
    i64.const 256
    i64.const 2
    local.set 6
    local.set 2
    local.tee 1
    local.get 1
    i32.const 2
    i32.add
    call 2
    local.get 2
    local.get 6
    i64.atomic.rmw8.cmpxchg_u offset=2
    local.tee 7
    local.get 7
    local.get 2
    i64.const 255
    i64.and
    i64.eq
    if ;; label = @1
      local.get 1
      i32.const 2
      i32.add
      i32.const 1
      i32.const 2
      i32.const 5
      call 1
    else
      local.get 1
      i32.const 2
      i32.add
      i32.const 1
      i32.const 1
      i32.const 5
      call 0
    end
    drop
    local.get $p
    i32.const 0
    i64.const -1
    local.set 8
    local.set 3
    local.tee 1
    local.get 1
    i32.const 4
    i32.const 1
    i32.const 6
    call 0
    local.get 3
    local.get 8
    memory.atomic.wait32
    drop
    local.get $p
    i64.const 0
    i64.const 1000
    local.set 8
    local.set 2
    local.tee 1
    local.get 1
    i32.const 8
    i32.add
    i32.const 8
    i32.const 1
    i32.const 7
    call 0
    local.get 2
    local.get 8
    memory.atomic.wait64 offset=8
    drop
    local.get $p
    i32.const 1
    local.set 3
    local.tee 1
    local.get 1
    i32.const 4
    i32.const 1
    i32.const 8
    call 0
    local.get 3
    memory.atomic.notify
  )
  (@custom "wasmgrind.patch" (after code) "\04\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\09\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 atomic_ops +0x5 i32.atomic.load
;; 1: 0 atomic_ops +0xe i64.atomic.store offset=8
;; 2: 0 atomic_ops +0x16 i32.atomic.rmw.add offset=4
;; 3: 0 atomic_ops +0x1f i64.atomic.rmw16.xchg_u
;; 4: 0 atomic_ops +0x2a i32.atomic.rmw.cmpxchg
;; 5: 0 atomic_ops +0x36 i64.atomic.rmw8.cmpxchg_u offset=2
;; 6: 0 atomic_ops +0x41 memory.atomic.wait32
;; 7: 0 atomic_ops +0x4d memory.atomic.wait64 offset=8
;; 8: 0 atomic_ops +0x56 memory.atomic.notify
