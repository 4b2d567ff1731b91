(module $minimal
  (type (;0;) (func (param i32)))
  (type (;1;) (func))
  (type (;2;) (func (param i32 i32) (result i32)))
  (type (;3;) (func (param i32 i32 i32)))
  (type (;4;) (func (result i32)))
  (type (;5;) (func))
  (type (;6;) (func (param i32 i32)))
  (import "env" "memory" (memory (;0;) 18 16384 shared))
  (global $__stack_pointer (;0;) (mut i32) i32.const 1048576)
  (global $__tls_base (;1;) (mut i32) i32.const 0)
  (global $__tls_size (;2;) i32 i32.const 16)
  (global $__tls_align (;3;) i32 i32.const 8)
  (global $__heap_base (;4;) i32 i32.const 1115440)
  (global $bump (;5;) (mut i32) i32.const 2000000)
  (global $__wasmgrind_stack_base (;6;) (mut i32) i32.const 0)
  (global $__wasmgrind_tls_block (;7;) (mut i32) i32.const 0)
  (export "__tls_base" (global $__tls_base))
  (export "__tls_size" (global $__tls_size))
  (export "__tls_align" (global $__tls_align))
  (export "__heap_base" (global $__heap_base))
  (export "__wasm_init_tls" (func $__wasm_init_tls))
  (export "__wasmgrind_malloc" (func $malloc))
  (export "__wasmgrind_free" (func $free))
  (export "tls_value" (func $tls_value))
  (export "__wasmgrind_thread_destroy" (func $__wasmgrind_thread_destroy))
  (export "__wasmgrind_stack_base" (global $__wasmgrind_stack_base))
  (start $__wasmgrind_start)
  (func $__wasm_init_tls (;0;) (type 0) (param i32)
    local.get 0
    global.set $__tls_base
    local.get 0
    i32.const 42
    i32.store
  )
  (func $__wasm_init_memory (;1;) (type 1))
  (func $malloc (;2;) (type 2) (param $size i32) (param $align i32) (result i32)
    i32.const 1049896
    local.get $size
    i32.atomic.rmw.add
    i32.const 2000000
    i32.add
  )
  (func $free (;3;) (type 3) (param i32 i32 i32))
  (func $tls_value (;4;) (type 4) (result i32)
    global.get $__tls_base
    i32.load
  )
  (func $__wasmgrind_start (;5;) (type 5)
    (local i32)
    call $__wasm_init_memory
    i32.const 1049908
    i32.const 1
    i32.atomic.rmw.add
    if ;; label = @1
      call $__wasmgrind_lock
      i32.const 1115440
      global.set $__stack_pointer
      i32.const 65536
      i32.const 16
      call $malloc
      local.set 0
      i32.const 1049904
      i32.const 0
      i32.atomic.store
      i32.const 1049904
      i32.const 1
      memory.atomic.notify
      drop
      local.get 0
      i32.eqz
      if ;; label = @2
        unreachable
      end
      local.get 0
      global.set $__wasmgrind_stack_base
      local.get 0
      i32.const 65536
      i32.add
      global.set $__stack_pointer
    end
    global.get $__tls_size
    if ;; label = @1
      global.get $__tls_size
      global.get $__tls_align
      call $malloc
      local.tee 0
      i32.eqz
      if ;; label = @2
        unreachable
      end
      local.get 0
      global.set $__wasmgrind_tls_block
      i32.const 0
      memory.grow
      drop
      local.get 0
      call $__wasm_init_tls
    end
  )
  (func $__wasmgrind_thread_destroy (;6;) (type 6) (param i32 i32)
    (local i32)
    local.get 1
    i32.eqz
    if ;; label = @1
      global.get $__wasmgrind_stack_base
      local.tee 1
      local.set 2
      i32.const 0
      global.set $__wasmgrind_stack_base
    end
    local.get 0
    i32.eqz
    if ;; label = @1
      global.get $__wasmgrind_tls_block
      local.set 0
      i32.const 0
      global.set $__wasmgrind_tls_block
    end
    local.get 2
    if ;; label = @1
      call $__wasmgrind_lock
      i32.const 1115440
      global.set $__stack_pointer
    end
    local.get 0
    if ;; label = @1
      local.get 0
      global.get $__tls_size
      global.get $__tls_align
      call $free
    end
    local.get 1
    if ;; label = @1
      local.get 1
      i32.const 65536
      i32.const 16
      call $free
    end
    local.get 2
    if ;; label = @1
      i32.const 1049904
      i32.const 0
      i32.atomic.store
      i32.const 1049904
      i32.const 1
      memory.atomic.notify
      drop
    end
  )
  (func $__wasmgrind_lock (;7;) (type 5)
    loop ;; label = @1
      i32.const 1049904
      i32.const 0
      i32.const 1
      i32.atomic.rmw.cmpxchg
      if ;; label = @2
        i32.const 1049904
        i32.const 1
        i64.const -1
        memory.atomic.wait32
        drop
        br 1 (;@1;)
      end
    end
  )
  (@custom "wasmgrind.patch" (after code) "\05\00\00\00\03\00\00\00")
)
