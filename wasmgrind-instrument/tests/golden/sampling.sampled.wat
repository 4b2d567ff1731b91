(module
  (type (;0;) (func (param i32 i32)))
  (type (;1;) (func (param i32) (result i32)))
  (type (;2;) (func (param i32 i32 i32 i32)))
  (type (;3;) (func (param i32)))
  (import "wasmgrind" "mem_read" (func (;0;) (type 2) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;1;) (type 2) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;2;) (type 3) (param i32)))
  (memory (;0;) 1 1 shared)
  (global $g (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (global (;2;) (mut i32) i32.const 0)
  (global (;3;) (mut i32) i32.const 0)
  (global (;4;) (mut i32) i32.const 0)
  (global (;5;) (mut i32) i32.const 0)
  (global (;6;) (mut i32) i32.const 0)
  (func $f (;3;) (type 0) (param $p i32) (param $n i32)
    (local i32 i32 i32 i32 i32 i32)
    global.get 1
    (@metadata.code.branch_hint "\01")
    if (result i32) ;; label = @1
      global.get 1
      i32.const 1
      i32.sub
      global.set 1
      i32.const 0
    else
      global.get 2
      i32.const 1
      i32.add
      local.tee 3
      global.set 2
      local.get 3
      i32.const 8
      i32.div_u
      local.tee 3
      i32.const 999
      local.get 3
      i32.const 999
      i32.lt_u
      select
      global.set 1
      i32.const 1
    end
    local.set 2
    local.get $p
    local.tee 3
    i32.load
    local.get 2
    (@metadata.code.branch_hint "\00")
    if ;; label = @1
      local.get 3
      i32.const 4
      i32.const 0
      i32.const 0
      call 0
    end
    drop
    loop $outer
      global.get 3
      (@metadata.code.branch_hint "\01")
      if (result i32) ;; label = @2
        global.get 3
        i32.const 1
        i32.sub
        global.set 3
        i32.const 0
      else
        global.get 4
        i32.const 1
        i32.add
        local.tee 3
        global.set 4
        local.get 3
        i32.const 8
        i32.div_u
        local.tee 3
        i32.const 999
        local.get 3
        i32.const 999
        i32.lt_u
        select
        global.set 3
        i32.const 1
      end
      local.set 4
      local.get $p
      i32.const 7
      local.set 5
      local.tee 3
      local.get 5
      i32.store offset=4
      local.get 4
      (@metadata.code.branch_hint "\00")
      if ;; label = @2
        local.get 3
        i32.const 4
        i32.add
        i32.const 4
        i32.const 0
        i32.const 1
        call 1
      end
      loop $inner
        global.get 5
        (@metadata.code.branch_hint "\01")
        if (result i32) ;; label = @3
          global.get 5
          i32.const 1
          i32.sub
          global.set 5
          i32.const 0
        else
          global.get 6
          i32.const 1
          i32.add
          local.tee 3
          global.set 6
          local.get 3
          i32.const 8
          i32.div_u
          local.tee 3
          i32.const 999
          local.get 3
          i32.const 999
          i32.lt_u
          select
          global.set 5
          i32.const 1
        end
        local.set 6
        local.get 6
        (@metadata.code.branch_hint "\00")
        if ;; label = @3
          block ;; label = @4
            local.get $p
            local.get $p
            i32.const 8
            local.set 7
            local.set 5
            local.tee 3
            local.get 5
            local.get 7
            memory.copy
            local.get 5
            local.get 7
            i32.const 0
            i32.const 2
            call 0
            local.get 3
            local.get 7
            i32.const 0
            i32.const 2
            call 1
            local.get $n
            br_table 0 (;@4;) $inner $outer
          end
          local.get $p
          local.tee 3
          local.get 3
          i32.const 8
          i32.add
          call 2
          i32.atomic.load offset=8
          local.get 3
          i32.const 8
          i32.add
          i32.const 4
          i32.const 1
          i32.const 3
          call 0
          drop
          local.get $n
          i32.const 1
          i32.sub
          local.tee $n
          br_if $inner
        else
          block ;; label = @4
            local.get $p
            local.get $p
            i32.const 8
            memory.copy
            local.get $n
            br_table 0 (;@4;) $inner $outer
          end
          local.get $p
          local.tee 3
          local.get 3
          i32.const 8
          i32.add
          call 2
          i32.atomic.load offset=8
          local.get 3
          i32.const 8
          i32.add
          i32.const 4
          i32.const 1
          i32.const 3
          call 0
          drop
          local.get $n
          i32.const 1
          i32.sub
          local.tee $n
          br_if $inner
        end
      end
      local.get $p
      local.tee 3
      local.get 3
      call 2
      i32.atomic.load
      local.get 3
      i32.const 4
      i32.const 1
      i32.const 4
      call 0
      br_if $outer
    end
    loop $count
      global.get $g
      i32.const 1
      i32.add
      global.set $g
      global.get $g
      i32.const 100
      i32.lt_u
      br_if $count
    end
  )
  (func $atomic_only (;4;) (type 1) (param $p i32) (result i32)
    (local i32 i32 i32)
    local.get $p
    i32.const 1
    local.set 3
    local.tee 2
    local.get 2
    call 2
    local.get 3
    i32.atomic.rmw.add
    local.get 2
    i32.const 4
    i32.const 2
    i32.const 5
    call 1
  )
  (@custom "wasmgrind.patch" (after code) "\05\00\00\00\00\00\00\00")
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\09\00\00\00\06\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 0 f +0x5 i32.load
;; 1: 0 f +0xf i32.store offset=4
;; 2: 0 f +0x1c memory.copy
;; 3: 0 f +0x2a i32.atomic.load offset=8
;; 4: 0 f +0x3b i32.atomic.load
;; 5: 1 atomic_only +0x5b i32.atomic.rmw.add
