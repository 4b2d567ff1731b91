(module
  (type (;0;) (func (param i32 i32) (result i32)))
  (type (;1;) (func (param i32 i32 i32 i32)))
  (type (;2;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 1) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 2) (param i32)))
  (memory (;0;) 1 1 shared)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (export "sum" (func $sum))
  (func $sum (;3;) (type 0) (param $p i32) (param $n i32) (result i32)
    (local $s i32) (local i32 i32 i32)
    loop $l
      global.get 0
      (@metadata.code.branch_hint "\01")
      if (result i32) ;; label = @2
        global.get 0
        i32.const 1
        i32.sub
        global.set 0
        i32.const 0
      else
        global.get 1
        i32.const 1
        i32.add
        local.tee 5
        global.set 1
        local.get 5
        i32.const 8
        i32.div_u
        local.tee 5
        i32.const 999
        local.get 5
        i32.const 999
        i32.lt_u
        select
        global.set 0
        i32.const 1
      end
      local.set 4
      local.get 4
      (@metadata.code.branch_hint "\00")
      if ;; label = @2
        local.get $s
        local.get $p
        local.tee 5
        i32.load
        local.get 5
        i32.const 4
        i32.const 0
        i32.const 0
        call 0
        i32.add
        local.set $s
        local.get $p
        i32.const 4
        i32.add
        local.set $p
        local.get $n
        i32.const 1
        i32.sub
        local.tee $n
        br_if $l
      else
        local.get $s
        local.get $p
        i32.load
        i32.add
        local.set $s
        local.get $p
        i32.const 4
        i32.add
        local.set $p
        local.get $n
        i32.const 1
        i32.sub
        local.tee $n
        br_if $l
      end
    end
    local.get $s
  )
  (@custom "wasmgrind.patch" (after code) "\04\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\09\00\00\00\01\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 sum +0xb i32.load
