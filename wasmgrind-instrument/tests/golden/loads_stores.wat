(module
  (type (;0;) (func (param i32) (result i64)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32 i32 i32 i32)))
  (type (;3;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 2) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 2) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 3) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $load_all (;3;) (type 0) (param $p i32) (result i64)
    (local i32)
    local.get $p
    local.tee 1
    i32.load
    local.get 1
    i32.const 4
    i32.const 0
    i32.const 0
    call 0
    drop
    local.get $p
    local.tee 1
    i64.load8_s offset=3
    local.get 1
    i32.const 3
    i32.add
    i32.const 1
    i32.const 0
    i32.const 1
    call 0
    drop
    local.get $p
    local.tee 1
    f32.load offset=16 align=2
    local.get 1
    i32.const 16
    i32.add
    i32.const 4
    i32.const 0
    i32.const 2
    call 0
    drop
    local.get $p
    local.tee 1
    f64.load offset=8
    local.get 1
    i32.const 8
    i32.add
    i32.const 8
    i32.const 0
    i32.const 3
    call 0
    drop
    local.get $p
    local.tee 1
    i32.load16_u
    local.get 1
    i32.const 2
    i32.const 0
    i32.const 4
    call 0
    i64.extend_i32_u
    local.get $p
    local.tee 1
    i64.load32_u offset=4294967295
    local.get 1
    i32.const -1
    i32.add
    i32.const 4
    i32.const 0
    i32.const 5
    call 0
    i64.add
  )
  (func $store_all (;4;) (type 1) (param $p i32)
    (local i32 i32 i64 f32 f64)
    local.get $p
    i32.const 7
    local.set 2
    local.tee 1
    local.get 2
    i32.store offset=4
    local.get 1
    i32.const 4
    i32.add
    i32.const 4
    i32.const 0
    i32.const 6
    call 1
    local.get $p
    i64.const -1
    local.set 3
    local.tee 1
    local.get 3
    i64.store32
    local.get 1
    i32.const 4
    i32.const 0
    i32.const 7
    call 1
    local.get $p
    f32.const 0x1.8p+0 (;=1.5;)
    local.set 4
    local.tee 1
    local.get 4
    f32.store
    local.get 1
    i32.const 4
    i32.const 0
    i32.const 8
    call 1
    local.get $p
    f64.const 0x1.4p+1 (;=2.5;)
    local.set 5
    local.tee 1
    local.get 5
    f64.store offset=8 align=1
    local.get 1
    i32.const 8
    i32.add
    i32.const 8
    i32.const 0
    i32.const 9
    call 1
    local.get $p
    i32.const 255
    local.set 2
    local.tee 1
    local.get 2
    i32.store8
    local.get 1
    i32.const 1
    i32.const 0
    i32.const 10
    call 1
  )
  (@custom "wasmgrind.patch" (after code) "\05\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\0b\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 load_all +0x5 i32.load
;; 1: 0 load_all +0xb i64.load8_s offset=3
;; 2: 0 load_all +0x11 f32.load offset=16 align=2
;; 3: 0 load_all +0x17 f64.load offset=8
;; 4: 0 load_all +0x1d i32.load16_u
;; 5: 0 load_all +0x23 i64.load32_u offset=4294967295
;; 6: 1 store_all +0x32 i32.store offset=4
;; 7: 1 store_all +0x39 i64.store32
;; 8: 1 store_all +0x43 f32.store
;; 9: 1 store_all +0x51 f64.store offset=8 align=1
;; 10: 1 store_all +0x59 i32.store8
