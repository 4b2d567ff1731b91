(module
  (type (;0;) (func (param i32)))
  (type (;1;) (func (param i32 i32 i32 i32)))
  (type (;2;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 2) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $lock (;3;) (type 0) (param $m i32)
    (local i32 i32 i32 i32 i64)
    local.get $m
    i32.const 0
    i32.const 1
    local.set 3
    local.set 2
    local.tee 1
    local.get 1
    call 2
    local.get 2
    local.get 3
    i32.atomic.rmw.cmpxchg
    local.tee 4
    local.get 4
    local.get 2
    i32.eq
    if ;; label = @1
      local.get 1
      i32.const 4
      i32.const 2
      i32.const 0
      call 1
    else
      local.get 1
      i32.const 4
      i32.const 1
      i32.const 0
      call 0
    end
    i32.eqz
    br_if 0
    block $done
      loop $again
        local.get $m
        i32.const 2
        local.set 2
        local.tee 1
        local.get 1
        call 2
        local.get 2
        i32.atomic.rmw.xchg
        local.get 1
        i32.const 4
        i32.const 2
        i32.const 1
        call 1
        i32.eqz
        br_if $done
        local.get $m
        i32.const 2
        i64.const -1
        local.set 5
        local.set 2
        local.tee 1
        local.get 1
        i32.const 4
        i32.const 1
        i32.const 2
        call 0
        local.get 2
        local.get 5
        memory.atomic.wait32
        drop
        br $again
      end
    end
  )
  (func $unlock (;4;) (type 0) (param $m i32)
    (local i32 i32)
    local.get $m
    i32.const 0
    local.set 2
    local.tee 1
    local.get 1
    i32.const 4
    i32.add
    call 2
    local.get 2
    i32.atomic.rmw.xchg offset=4
    local.get 1
    i32.const 4
    i32.add
    i32.const 4
    i32.const 2
    i32.const 3
    call 1
    drop
  )
  (func $narrow (;5;) (type 0) (param $p i32)
    (local i32 i32 i32 i32 i64)
    local.get $p
    i32.const 257
    local.set 2
    local.tee 1
    local.get 1
    call 2
    local.get 2
    i32.atomic.store8
    local.get 1
    i32.const 1
    i32.const 1
    i32.const 4
    call 1
    local.get $p
    i32.const 0
    i32.const 511
    local.set 3
    local.set 2
    local.tee 1
    local.get 1
    call 2
    local.get 2
    local.get 3
    i32.atomic.rmw8.cmpxchg_u
    local.tee 4
    local.get 4
    local.get 2
    i32.const 255
    i32.and
    i32.eq
    if ;; label = @1
      local.get 1
      i32.const 1
      i32.const 2
      i32.const 5
      call 1
    else
      local.get 1
      i32.const 1
      i32.const 1
      i32.const 5
      call 0
    end
    drop
    local.get $p
    i64.const 1
    local.set 5
    local.tee 1
    local.get 1
    i32.const 8
    i32.add
    call 2
    local.get 5
    i64.atomic.rmw.add offset=8
    local.get 1
    i32.const 8
    i32.add
    i32.const 8
    i32.const 2
    i32.const 6
    call 1
    drop
    local.get $p
    i64.const 0
    local.set 5
    local.tee 1
    local.get 1
    i32.const 16
    i32.add
    call 2
    local.get 5
    i64.atomic.store offset=16
    local.get 1
    i32.const 16
    i32.add
    i32.const 8
    i32.const 1
    i32.const 7
    call 1
  )
  (@custom "wasmgrind.patch" (after code) "\06\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\08\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 lock +0x9 i32.atomic.rmw.cmpxchg
;; 1: 0 lock +0x18 i32.atomic.rmw.xchg
;; 2: 0 lock +0x25 memory.atomic.wait32
;; 3: 1 unlock +0x35 i32.atomic.rmw.xchg offset=4
;; 4: 2 narrow +0x42 i32.atomic.store8
;; 5: 2 narrow +0x4d i32.atomic.rmw8.cmpxchg_u
;; 6: 2 narrow +0x56 i64.atomic.rmw.add offset=8
;; 7: 2 narrow +0x5f i64.atomic.store offset=16
