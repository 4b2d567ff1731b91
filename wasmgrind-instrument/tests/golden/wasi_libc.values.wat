(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32 i32) (result i32)))
  (type (;2;) (func (param i32 i32 i32) (result i32)))
  (type (;3;) (func (param i32)))
  (type (;4;) (func (param i32 i32 i32 i32) (result i32)))
  (type (;5;) (func))
  (type (;6;) (func (param i32 i32 i32 i32)))
  (type (;7;) (func (param i32)))
  (type (;8;) (func (param i32 i32 i64 i64 i32)))
  (type (;9;) (func (param i32 i32)))
  (import "wasi" "thread-spawn" (func $spawn (;0;) (type 0) (param i32) (result i32)))
  (import "env" "memory" (memory (;0;) 1 1 shared))
  (import "wasmgrind" "mem_read" (func (;1;) (type 6) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_write" (func (;2;) (type 6) (param i32 i32 i32 i32)))
  (import "wasmgrind" "mem_atomic_begin" (func (;3;) (type 7) (param i32)))
  (import "wasmgrind" "mem_atomic_value" (func (;4;) (type 8) (param i32 i32 i64 i64 i32)))
  (import "wasmgrind" "heap_malloc" (func (;5;) (type 9) (param i32 i32)))
  (import "wasmgrind" "heap_free_unsized" (func (;6;) (type 7) (param i32)))
  (import "wasmgrind" "pthread_created" (func (;7;) (type 7) (param i32)))
  (import "wasmgrind" "pthread_joined" (func (;8;) (type 7) (param i32)))
  (import "wasmgrind" "pthread_detached" (func (;9;) (type 7) (param i32)))
  (table (;0;) 1 funcref)
  (export "_start" (func $user))
  (elem (;0;) (i32.const 0) func $__wasmgrind_wrap_free)
  (elem (;1;) declare func $malloc)
  (func $malloc (;10;) (type 0) (param $n i32) (result i32)
    local.get $n
    i32.load
  )
  (func $calloc (;11;) (type 1) (param $n i32) (param $size i32) (result i32)
    local.get $n
    local.get $size
    i32.mul
    call $malloc
  )
  (func $realloc (;12;) (type 1) (param $p i32) (param $n i32) (result i32)
    local.get $n
    call $malloc
  )
  (func $aligned_alloc (;13;) (type 1) (param $align i32) (param $n i32) (result i32)
    local.get $n
    call $malloc
  )
  (func $posix_memalign (;14;) (type 2) (param $out i32) (param $align i32) (param $n i32) (result i32)
    local.get $out
    local.get $n
    call $malloc
    i32.store
    i32.const 0
  )
  (func $free (;15;) (type 3) (param $p i32)
    local.get $p
    i32.const 0
    i32.store
  )
  (func $__tl_sync (;16;) (type 3) (param $p i32)
    (local i32 i32 f64 i32)
    local.get $p
    local.tee 1
    local.get 1
    i32.const 20
    i32.add
    call 3
    i32.load offset=20
    local.get 1
    i32.const 20
    i32.add
    i32.const 4
    i32.const 1
    i32.const 0
    call 1
    drop
    local.get $p
    i32.const 1
    local.set 2
    local.tee 1
    local.get 1
    i32.const 4
    i32.add
    call 3
    local.get 2
    i32.store offset=4
    local.get 1
    i32.const 4
    i32.add
    i32.const 1026
    i64.const 0
    local.get 2
    i64.extend_i32_u
    i32.const 1
    call 4
    local.get 1
    i32.const 4
    i32.add
    i32.const 4
    i32.const 1
    i32.const 1
    call 2
    local.get $p
    f64.const 0x1p+0 (;=1;)
    local.set 3
    local.tee 1
    local.get 1
    i32.const 8
    i32.add
    call 3
    local.get 3
    f64.store offset=8
    local.get 1
    i32.const 8
    i32.add
    i32.const 8
    i32.const 1
    i32.const 2
    call 2
    local.get $p
    i32.const 0
    i32.const 16
    local.set 4
    local.set 2
    local.tee 1
    local.get 2
    local.get 4
    memory.fill
    local.get 1
    local.get 4
    i32.const 0
    i32.const 3
    call 2
  )
  (func $__pthread_create (;17;) (type 4) (param i32 i32 i32 i32) (result i32)
    (local i32 i32)
    local.get 0
    i32.const 100
    local.set 5
    local.tee 4
    local.get 4
    call 3
    local.get 5
    i32.store
    local.get 4
    i32.const 1026
    i64.const 0
    local.get 5
    i64.extend_i32_u
    i32.const 4
    call 4
    local.get 4
    i32.const 4
    i32.const 1
    i32.const 4
    call 2
    i32.const 0
  )
  (func $__pthread_join (;18;) (type 1) (param i32 i32) (result i32)
    i32.const 0
  )
  (func $__pthread_detach (;19;) (type 0) (param $t i32) (result i32)
    local.get $t
    i32.const 0
    call $__pthread_join
  )
  (func $__rdl_alloc (;20;) (type 1) (param $size i32) (param $align i32) (result i32)
    local.get $size
    call $__wasmgrind_wrap_malloc
  )
  (func $user (;21;) (type 5)
    (local $p i32) (local i32 i32)
    ref.func $malloc
    drop
    i32.const 16
    call $__wasmgrind_wrap_malloc
    local.tee $p
    i32.const 7
    local.set 2
    local.tee 1
    local.get 2
    i32.store
    local.get 1
    i32.const 4
    i32.const 0
    i32.const 5
    call 2
    local.get $p
    i32.const 32
    call $__wasmgrind_wrap_realloc
    local.set $p
    local.get $p
    call $__tl_sync
    local.get $p
    i32.const 0
    call_indirect (type 3)
    i32.const 2
    i32.const 4
    call $__wasmgrind_wrap_calloc
    call $__wasmgrind_wrap_free
    i32.const 8
    i32.const 8
    call $__wasmgrind_wrap_aligned_alloc
    call $__wasmgrind_wrap_free
    i32.const 0
    i32.const 8
    i32.const 8
    call $__wasmgrind_wrap_posix_memalign
    drop
    i32.const 0
    i32.const 0
    i32.const 0
    i32.const 0
    call $__wasmgrind_wrap_pthread_create
    drop
    i32.const 100
    i32.const 0
    call $__wasmgrind_wrap_pthread_join
    drop
    i32.const 100
    call $__wasmgrind_wrap_pthread_detach
    drop
    i32.const 8
    i32.const 8
    call $__rdl_alloc
    return_call $__wasmgrind_wrap_free
  )
  (func $__wasmgrind_wrap_malloc (;22;) (type 0) (param i32) (result i32)
    (local i32)
    local.get 0
    call $malloc
    local.tee 1
    if ;; label = @1
      local.get 1
      local.get 0
      call 5
    end
    local.get 1
  )
  (func $__wasmgrind_wrap_calloc (;23;) (type 1) (param i32 i32) (result i32)
    (local i32)
    local.get 0
    local.get 1
    call $calloc
    local.tee 2
    if ;; label = @1
      local.get 2
      local.get 0
      local.get 1
      i32.mul
      call 5
    end
    local.get 2
  )
  (func $__wasmgrind_wrap_realloc (;24;) (type 1) (param i32 i32) (result i32)
    (local i32)
    local.get 0
    if ;; label = @1
      local.get 0
      call 6
    end
    local.get 0
    local.get 1
    call $realloc
    local.tee 2
    if ;; label = @1
      local.get 2
      local.get 1
      call 5
    end
    local.get 2
  )
  (func $__wasmgrind_wrap_aligned_alloc (;25;) (type 1) (param i32 i32) (result i32)
    (local i32)
    local.get 0
    local.get 1
    call $aligned_alloc
    local.tee 2
    if ;; label = @1
      local.get 2
      local.get 1
      call 5
    end
    local.get 2
  )
  (func $__wasmgrind_wrap_posix_memalign (;26;) (type 2) (param i32 i32 i32) (result i32)
    (local i32)
    local.get 0
    local.get 1
    local.get 2
    call $posix_memalign
    local.tee 3
    i32.eqz
    if ;; label = @1
      local.get 0
      i32.load
      local.get 2
      call 5
    end
    local.get 3
  )
  (func $__wasmgrind_wrap_free (;27;) (type 3) (param i32)
    local.get 0
    if ;; label = @1
      local.get 0
      call 6
    end
    local.get 0
    call $free
  )
  (func $__wasmgrind_wrap_pthread_create (;28;) (type 4) (param i32 i32 i32 i32) (result i32)
    (local i32)
    local.get 0
    local.get 1
    local.get 2
    local.get 3
    call $__pthread_create
    local.tee 4
    i32.eqz
    if ;; label = @1
      local.get 0
      i32.load
      call 7
    end
    local.get 4
  )
  (func $__wasmgrind_wrap_pthread_join (;29;) (type 1) (param i32 i32) (result i32)
    (local i32)
    local.get 0
    local.get 1
    call $__pthread_join
    local.tee 2
    i32.eqz
    if ;; label = @1
      local.get 0
      call 8
    end
    local.get 2
  )
  (func $__wasmgrind_wrap_pthread_detach (;30;) (type 0) (param i32) (result i32)
    (local i32)
    local.get 0
    call $__pthread_detach
    local.tee 1
    i32.eqz
    if ;; label = @1
      local.get 0
      call 9
    end
    local.get 1
  )
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\07\00\00\00\06\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
;; 0: 7 __tl_sync +0x3d i32.load offset=20
;; 1: 7 __tl_sync +0x45 i32.store offset=4
;; 2: 7 __tl_sync +0x53 f64.store offset=8
;; 3: 7 __tl_sync +0x5c memory.fill
;; 4: 8 __pthread_create +0x67 i32.store
;; 5: 12 user +0x91 i32.store
