(module
  (type (;0;) (func (param i32) (result v128)))
  (type (;1;) (func (param i32 i32 i32 i32)))
  (type (;2;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 2) (param i32)))
  (memory (;0;) 1 1 shared)
  (func $simd (;3;) (type 0) (param $p i32) (result v128)
    (local i32 v128)
    local.get $p
    local.get $p
    local.tee 1
    v128.load offset=16
    local.get 1
    i32.const 16
    i32.add
    i32.const 16
    i32.const 0
    i32.const 0
    call 0
    local.set 2
    local.tee 1
    local.get 2
    v128.store
    local.get 1
    i32.const 16
    i32.const 0
    i32.const 1
    call 1
    local.get $p
    local.tee 1
    v128.load8x8_s
    local.get 1
    i32.const 8
    i32.const 0
    i32.const 2
    call 0
    drop
    local.get $p
    local.tee 1
    v128.load32_splat offset=4
    local.get 1
    i32.const 4
    i32.add
    i32.const 4
    i32.const 0
    i32.const 3
    call 0
    drop
    local.get $p
    local.tee 1
    v128.load64_zero
    local.get 1
    i32.const 8
    i32.const 0
    i32.const 4
    call 0
    drop
    local.get $p
    local.get $p
    local.tee 1
    v128.load
    local.get 1
    i32.const 16
    i32.const 0
    i32.const 5
    call 0
    local.set 2
    local.tee 1
    local.get 2
    v128.store16_lane offset=2 3
    local.get 1
    i32.const 2
    i32.add
    i32.const 2
    i32.const 0
    i32.const 6
    call 1
    local.get $p
    v128.const i32x4 0x00000001 0x00000002 0x00000003 0x00000004
    local.set 2
    local.tee 1
    local.get 2
    v128.load8_lane 15
    local.get 1
    i32.const 1
    i32.const 0
    i32.const 7
    call 0
  )
  (@custom "wasmgrind.patch" (after code) "\04\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\01\00\00\00\08\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 simd +0x7 v128.load offset=16
;; 1: 0 simd +0xb v128.store
;; 2: 0 simd +0x11 v128.load8x8_s
;; 3: 0 simd +0x18 v128.load32_splat offset=4
;; 4: 0 simd +0x1f v128.load64_zero
;; 5: 0 simd +0x28 v128.load
;; 6: 0 simd +0x2c v128.store16_lane offset=2 3
;; 7: 0 simd +0x45 v128.load8_lane 15
