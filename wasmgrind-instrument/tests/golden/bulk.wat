(module
  (type (;0;) (func (param i32 i32 i32)))
  (type (;1;) (func (param i32 i32 i32 i32)))
  (type (;2;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 2) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $bulk (;3;) (type 0) (param $dst i32) (param $src i32) (param $n i32)
    (local i32 i32 i32)
    local.get $dst
    i32.const 0
    local.get $n
    local.set 5
    local.set 4
    local.tee 3
    local.get 4
    local.get 5
    memory.fill
    local.get 3
    local.get 5
    i32.const 0
    i32.const 0
    call 1
    local.get $dst
    local.get $src
    local.get $n
    local.set 5
    local.set 4
    local.tee 3
    local.get 4
    local.get 5
    memory.copy
    local.get 4
    local.get 5
    i32.const 0
    i32.const 1
    call 0
    local.get 3
    local.get 5
    i32.const 0
    i32.const 1
    call 1
    local.get $dst
    i32.const 1
    i32.const 4
    local.set 5
    local.set 4
    local.tee 3
    local.get 4
    local.get 5
    memory.init $d
    local.get 3
    local.get 5
    i32.const 0
    i32.const 2
    call 1
  )
  (data $d (;0;) "hello")
  (@custom "wasmgrind.patch" (after data) "\04\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after data) "\01\00\00\00\01\00\00\00\03\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 bulk +0x9 memory.fill
;; 1: 0 bulk +0x12 memory.copy
;; 2: 0 bulk +0x1c memory.init 0
