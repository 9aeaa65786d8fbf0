/* void aw__ctx_switch(void **from_sp, void *to_sp)  -- AArch64 AAPCS64.
 * Saves x19-x30 and d8-d15 (the callee-saved set) and FPCR on the current
 * stack, stores sp in *from_sp, loads to_sp and restores the same set.
 * A new coroutine's frame is laid out by aw__coro_init with x30 pointing
 * at aw__coro_trampoline, x19 = arg and x20 = entry. */
    .text
    .globl aw__ctx_switch
    .hidden aw__ctx_switch
    .type aw__ctx_switch, %function
    .p2align 4
aw__ctx_switch:
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldr x9, [sp, #160]
    msr fpcr, x9
    add sp, sp, #176
    ret
    .size aw__ctx_switch, .-aw__ctx_switch

    .globl aw__coro_trampoline
    .hidden aw__coro_trampoline
    .type aw__coro_trampoline, %function
    .p2align 4
aw__coro_trampoline:
    mov x29, #0
    mov x0, x19
    blr x20
    brk #0
    .size aw__coro_trampoline, .-aw__coro_trampoline

    .section .note.GNU-stack,"",%progbits
