(module
  (type $create_t (;0;) (func (param i32 i32) (result i32)))
  (type (;1;) (func (param i32) (result i32)))
  (type (;2;) (func (param i32)))
  (type (;3;) (func (param i32 i32 i32)))
  (type (;4;) (func))
  (type (;5;) (func (param i32 i32 i32) (result i32)))
  (type (;6;) (func (param i32 i32) (result i32)))
  (type (;7;) (func (param i32 i32)))
  (type (;8;) (func (param i32 i32 i32 i32)))
  (type (;9;) (func (param i32)))
  (import "wasmgrind" "thread_create" (func $thread_create (;0;) (type 5) (param i32 i32 i32) (result i32)))
  (import "wasmgrind" "thread_join" (func $thread_join (;1;) (type 6) (param i32 i32) (result i32)))
  (import "env" "other" (func $other (;2;) (type 2) (param i32)))
  (import "wasmgrind" "panic" (func $panic (;3;) (type 3) (param i32 i32 i32)))
  (import "wasmgrind" "start_lock" (func $start_lock (;4;) (type 7) (param i32 i32)))
  (import "wasmgrind" "finish_lock" (func $finish_lock (;5;) (type 7) (param i32 i32)))
  (import "wasmgrind" "start_unlock" (func $start_unlock (;6;) (type 7) (param i32 i32)))
  (import "wasmgrind" "finish_unlock" (func $finish_unlock (;7;) (type 7) (param i32 i32)))
  (import "wasmgrind" "mem_read" (func (;8;) (type 8) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;9;) (type 8) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;10;) (type 9) (param i32)))
  (table (;0;) 2 funcref)
  (memory (;0;) 1 1 shared)
  (global $fref (;0;) funcref ref.func $worker)
  (export "thread_start" (func $worker))
  (export "main" (func $main))
  (start $init)
  (elem (;0;) (i32.const 0) func $worker $main)
  (func $init (;11;) (type 4))
  (func $worker (;12;) (type 2) (param $arg i32)
    local.get $arg
    i32.const 0
    call $start_lock
    local.get $arg
    i32.const 1
    call $finish_lock
    local.get $arg
    i32.const 2
    call $start_unlock
    local.get $arg
    i32.const 3
    call $finish_unlock
    local.get $arg
    call $other
  )
  (func $main (;13;) (type 2) (param $x i32)
    (local i32)
    local.get $x
    i32.const 0
    i32.const 4
    call $thread_create
    drop
    local.get $x
    local.tee 1
    i32.load
    local.get 1
    i32.const 4
    i32.const 0
    i32.const 5
    call 8
    i32.const 6
    call $thread_join
    drop
    ref.func $worker
    drop
    i32.const 100
    i32.const 0
    i32.const 0
    call $panic
    local.get $x
    call $worker
    local.get $x
    call $join_tail
    drop
  )
  (func $join_tail (;14;) (type 1) (param $t i32) (result i32)
    local.get $t
    i32.const 7
    return_call $thread_join
  )
  (func $__wasmgrind_injected (;15;) (type 2) (param $a i32)
    local.get $a
    i32.const 1
    i32.store
    local.get $a
    i32.const 8
    call $thread_join
    drop
  )
  (@custom "wasmgrind.patch" (after code) "\0f\00\00\00\01\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\09\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 9 worker +0x8 call start_lock
;; 1: 9 worker +0xc call finish_lock
;; 2: 9 worker +0x10 call start_unlock
;; 3: 9 worker +0x14 call finish_unlock
;; 4: 10 main +0x21 call thread_create
;; 5: 10 main +0x26 i32.load
;; 6: 10 main +0x29 call thread_join
;; 7: 11 join_tail +0x46 return_call thread_join
;; 8: 12 __wasmgrind_injected +0x54 call thread_join
