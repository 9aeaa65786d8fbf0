/* void aw__ctx_switch(void **from_sp, void *to_sp, aw__coro_t *to)
 * -- x86_64 System V, the out-of-line switch (sanitizer and debug builds;
 * optimised builds inline the same protocol, coro.c).
 *
 * The protocol: a switched-out coroutine's stack pointer points at
 *   [resume address][MXCSR | x87 control word][rbp] ...
 * and switching to it pops the resume address and jumps there with
 * rdi = `to` (a new coroutine's resume address is aw__coro_boot, which
 * needs it). What lies above rbp belongs to whoever switched out: here,
 * the other callee-saved registers and the return address.
 * No `ret` across stacks: a jump keeps the return-stack predictor in step
 * with the calls the resumed side made before it switched out. */
    .text
    .globl aw__ctx_switch
    .hidden aw__ctx_switch
    .type aw__ctx_switch, @function
    .p2align 4
aw__ctx_switch:
    .cfi_startproc
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rbp
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    leaq 1f(%rip), %rax
    pushq %rax
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    movq %rdx, %rdi
    popq %rax
    jmpq *%rax
1:
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %rbp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    ret
    .cfi_endproc
    .size aw__ctx_switch, .-aw__ctx_switch

/* A new coroutine's first resume: rdi = its aw__coro_t, rsp at its
 * initial FP control word. Calls aw__coro_start(c), which never returns. */
    .globl aw__coro_boot
    .hidden aw__coro_boot
    .type aw__coro_boot, @function
    .p2align 4
aw__coro_boot:
    .cfi_startproc
    .cfi_undefined rip
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    andq $-16, %rsp
    callq aw__coro_start
    ud2
    .cfi_endproc
    .size aw__coro_boot, .-aw__coro_boot

    .section .note.GNU-stack,"",@progbits
