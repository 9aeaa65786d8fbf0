/* void aw__ctx_switch(void **from_sp, void *to_sp)  -- x86_64 System V.
 * Saves the callee-saved registers (rbx, rbp, r12-r15) and the FP control
 * state (MXCSR, x87 control word) on the current stack, stores the stack
 * pointer in *from_sp, loads to_sp and restores the same set from there.
 * A new coroutine's stack is laid out by aw__coro_init to look like a
 * switched-out one whose return address is aw__coro_trampoline. */
    .text
    .globl aw__ctx_switch
    .hidden aw__ctx_switch
    .type aw__ctx_switch, @function
    .p2align 4
aw__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size aw__ctx_switch, .-aw__ctx_switch

/* First code a new coroutine runs: entry (r13) called with arg (r12). */
    .globl aw__coro_trampoline
    .hidden aw__coro_trampoline
    .type aw__coro_trampoline, @function
    .p2align 4
aw__coro_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size aw__coro_trampoline, .-aw__coro_trampoline

    .section .note.GNU-stack,"",@progbits
