(module
  (type (;0;) (func (param i32) (result i32 i64)))
  (type (;1;) (func (param i32 i32 i32) (result i32 i32)))
  (type (;2;) (func (param i32) (result i32)))
  (type (;3;) (func (param i32 i32) (result i32)))
  (type (;4;) (func (param i32 i32 i32 i32)))
  (type (;5;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 4) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 4) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 5) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $pair (;3;) (type 0) (param $p i32) (result i32 i64)
    (local i32 i32)
    local.get $p
    local.get $p
    i32.const 9
    block (type 1) (param i32 i32 i32) (result i32 i32) ;; label = @1
      local.set 2
      local.tee 1
      local.get 2
      i32.store offset=4
      local.get 1
      i32.const 4
      i32.add
      i32.const 4
      i32.const 0
      i32.const 0
      call 1
      local.get $p
      local.tee 1
      i32.load
      local.get 1
      i32.const 4
      i32.const 0
      i32.const 1
      call 0
    end
    local.tee 1
    i64.load
    local.get 1
    i32.const 8
    i32.const 0
    i32.const 2
    call 0
  )
  (func $loop_mv (;4;) (type 2) (param $p i32) (result i32)
    (local i32 i32)
    local.get $p
    i32.const 3
    loop (type 3) (param i32 i32) (result i32) ;; label = @1
      local.set 2
      local.tee 1
      local.get 1
      call 2
      local.get 2
      i32.atomic.rmw.sub
      local.get 1
      i32.const 4
      i32.const 2
      i32.const 3
      call 1
    end
  )
  (@custom "wasmgrind.patch" (after code) "\05\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\04\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 pair +0xb i32.store offset=4
;; 1: 0 pair +0x10 i32.load
;; 2: 0 pair +0x14 i64.load
;; 3: 1 loop_mv +0x20 i32.atomic.rmw.sub
