(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32 i32) (result i32)))
  (type (;2;) (func (param i32 i32 i32) (result i32)))
  (type (;3;) (func (param i32)))
  (type (;4;) (func (param i32 i32 i32 i32) (result i32)))
  (type (;5;) (func))
  (type (;6;) (func (param i32 i32)))
  (type (;7;) (func (param i32)))
  (import "wasi" "thread-spawn" (func $spawn (;0;) (type 0) (param i32) (result i32)))
  (import "env" "memory" (memory (;0;) 1 1 shared))
  (import "wasmgrind" "heap_malloc" (func (;1;) (type 6) (param i32 i32)))
  (import "wasmgrind" "heap_free_unsized" (func (;2;) (type 7) (param i32)))
  (import "wasmgrind" "pthread_created" (func (;3;) (type 7) (param i32)))
  (import "wasmgrind" "pthread_joined" (func (;4;) (type 7) (param i32)))
  (import "wasmgrind" "pthread_detached" (func (;5;) (type 7) (param i32)))
  (table (;0;) 1 funcref)
  (export "_start" (func $user))
  (elem (;0;) (i32.const 0) func $free)
  (elem (;1;) declare func $malloc)
  (func $malloc (;6;) (type 0) (param $n i32) (result i32)
    local.get $n
    i32.load
  )
  (func $calloc (;7;) (type 1) (param $n i32) (param $size i32) (result i32)
    local.get $n
    local.get $size
    i32.mul
    call $malloc
  )
  (func $realloc (;8;) (type 1) (param $p i32) (param $n i32) (result i32)
    local.get $n
    call $malloc
  )
  (func $aligned_alloc (;9;) (type 1) (param $align i32) (param $n i32) (result i32)
    local.get $n
    call $malloc
  )
  (func $posix_memalign (;10;) (type 2) (param $out i32) (param $align i32) (param $n i32) (result i32)
    local.get $out
    local.get $n
    call $malloc
    i32.store
    i32.const 0
  )
  (func $free (;11;) (type 3) (param $p i32)
    local.get $p
    i32.const 0
    i32.store
  )
  (func $__tl_sync (;12;) (type 3) (param $p i32)
    local.get $p
    i32.load offset=20
    drop
    local.get $p
    i32.const 1
    i32.store offset=4
    local.get $p
    f64.const 0x1p+0 (;=1;)
    f64.store offset=8
    local.get $p
    i32.const 0
    i32.const 16
    memory.fill
  )
  (func $__pthread_create (;13;) (type 4) (param i32 i32 i32 i32) (result i32)
    local.get 0
    i32.const 100
    i32.store
    i32.const 0
  )
  (func $__pthread_join (;14;) (type 1) (param i32 i32) (result i32)
    i32.const 0
  )
  (func $__pthread_detach (;15;) (type 0) (param $t i32) (result i32)
    local.get $t
    i32.const 0
    call $__pthread_join
  )
  (func $__rdl_alloc (;16;) (type 1) (param $size i32) (param $align i32) (result i32)
    local.get $size
    call $malloc
  )
  (func $user (;17;) (type 5)
    (local $p i32)
    ref.func $malloc
    drop
    i32.const 16
    call $malloc
    local.tee $p
    i32.const 7
    i32.store
    local.get $p
    i32.const 32
    call $realloc
    local.set $p
    local.get $p
    call $__tl_sync
    local.get $p
    i32.const 0
    call_indirect (type 3)
    i32.const 2
    i32.const 4
    call $calloc
    call $free
    i32.const 8
    i32.const 8
    call $aligned_alloc
    call $free
    i32.const 0
    i32.const 8
    i32.const 8
    call $posix_memalign
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
    return_call $free
  )
  (func $__wasmgrind_wrap_pthread_create (;18;) (type 4) (param i32 i32 i32 i32) (result i32)
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
      call 3
    end
    local.get 4
  )
  (func $__wasmgrind_wrap_pthread_join (;19;) (type 1) (param i32 i32) (result i32)
    (local i32)
    local.get 0
    local.get 1
    call $__pthread_join
    local.tee 2
    i32.eqz
    if ;; label = @1
      local.get 0
      call 4
    end
    local.get 2
  )
  (func $__wasmgrind_wrap_pthread_detach (;20;) (type 0) (param i32) (result i32)
    (local i32)
    local.get 0
    call $__pthread_detach
    local.tee 1
    i32.eqz
    if ;; label = @1
      local.get 0
      call 5
    end
    local.get 1
  )
  (@custom "wasmgrind.instrument" (after code) "\01\00\00\00\04\00\00\00\00\00\00\00")
)
;; locations (id: func_index func_name +code_offset instr)
