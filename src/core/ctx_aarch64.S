/* Context switch for AArch64 (AAPCS64, Linux and the BSDs).
 *
 * Only what the ABI makes callee-saved is kept: x19-x28, the frame pointer
 * x29, the link register x30, the low halves of v8-v15 (d8-d15) and FPCR
 * (rounding mode, flush-to-zero, trap enables).  Everything else is already
 * dead at the call, so the switch is an ordinary function call that happens
 * to return on another stack.
 *
 * A suspended context is a 176-byte frame on its own stack, and its saved
 * stack pointer (always 16-byte aligned, as AArch64 requires) points at it:
 *
 *     0 x19 x20   16 x21 x22   32 x23 x24   48 x25 x26   64 x27 x28
 *    80 x29 x30   96 d8 d9    112 d10 d11  128 d12 d13  144 d14 d15
 *   160 FPCR     168 padding
 *
 * BTI: global entry points start with `bti c` (a hint, so a NOP on older
 * CPUs); the trampoline is entered by `ret`, which needs no landing pad.
 * PAC: we never sign x30 ourselves; C callers sign and authenticate their
 * own return address against their own stack pointer, which the switch
 * preserves, so pac-ret code works across switches.
 */
#if defined(__aarch64__) && !defined(__ILP32__) && !defined(SCIO_CTX_UCONTEXT)

	.text

/* void scio__ctx_asm_swap(void **save_sp, void *new_sp)
 * x0 = where to store this context's stack pointer, x1 = the stack pointer
 * of the context to resume. */
	.globl	scio__ctx_asm_swap
	.hidden	scio__ctx_asm_swap
	.type	scio__ctx_asm_swap, %function
	.p2align 4
scio__ctx_asm_swap:
	.cfi_startproc
	hint	#34			/* bti c */
	sub	sp, sp, #176
	.cfi_def_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_offset x29, -96
	.cfi_offset x30, -88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]

	mov	x10, sp
	str	x10, [x0]
	mov	sp, x1
ctx_restore:			/* x9 = the current FPCR */
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	/* Writing FPCR can stall the pipeline on some cores, and it almost
	 * never differs between contexts; x9 still holds ours. */
	ldr	x10, [sp, #160]
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x10
1:	add	sp, sp, #176
	.cfi_def_cfa_offset 0
	.cfi_restore x29
	.cfi_restore x30
	ret
	.cfi_endproc
	.size	scio__ctx_asm_swap, .-scio__ctx_asm_swap

/* void scio__ctx_asm_jump(void *new_sp)
 * x0 = the stack pointer of the context to resume.  For a context that is
 * finished: nothing is saved, and the old stack is not written again. */
	.globl	scio__ctx_asm_jump
	.hidden	scio__ctx_asm_jump
	.type	scio__ctx_asm_jump, %function
	.p2align 4
scio__ctx_asm_jump:
	.cfi_startproc
	hint	#34			/* bti c */
	mrs	x9, fpcr
	mov	sp, x0
	b	ctx_restore
	.cfi_endproc
	.size	scio__ctx_asm_jump, .-scio__ctx_asm_jump

/* void *scio__ctx_asm_prime(void *top, boot, entry, arg)
 * x0 = top of the new stack, x1 = boot, x2 = entry, x3 = arg.
 * Builds a frame that scio__ctx_asm_swap "returns" through into
 * ctx_trampoline with x19 = boot, x20 = entry, x21 = arg, x29 = 0, and the
 * caller's FPCR (a new context inherits the rounding mode, as a new thread
 * does).  The frame sits below 16 zero bytes under the aligned top.
 * Returns its stack pointer. */
	.globl	scio__ctx_asm_prime
	.hidden	scio__ctx_asm_prime
	.type	scio__ctx_asm_prime, %function
	.p2align 4
scio__ctx_asm_prime:
	.cfi_startproc
	hint	#34			/* bti c */
	and	x9, x0, #0xfffffffffffffff0
	sub	x9, x9, #192
	stp	x1, x2, [x9, #0]	/* x19 = boot, x20 = entry */
	stp	x3, xzr, [x9, #16]	/* x21 = arg */
	stp	xzr, xzr, [x9, #32]
	stp	xzr, xzr, [x9, #48]
	stp	xzr, xzr, [x9, #64]
	adr	x10, ctx_trampoline
	stp	xzr, x10, [x9, #80]	/* x29 = 0 ends frame-record walks */
	stp	xzr, xzr, [x9, #96]
	stp	xzr, xzr, [x9, #112]
	stp	xzr, xzr, [x9, #128]
	stp	xzr, xzr, [x9, #144]
	mrs	x10, fpcr
	stp	x10, xzr, [x9, #160]
	stp	xzr, xzr, [x9, #176]
	mov	x0, x9
	ret
	.cfi_endproc
	.size	scio__ctx_asm_prime, .-scio__ctx_asm_prime

/* Entered by `ret` with sp 16-byte aligned.  The undefined return address
 * tells unwinders that the stack ends here; boot never returns, and brk
 * makes a broken promise fail loudly. */
	.type	ctx_trampoline, %function
	.p2align 4
ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x20
	mov	x1, x21
	blr	x19
	brk	#1000
	.cfi_endproc
	.size	ctx_trampoline, .-ctx_trampoline

#if defined(__ARM_FEATURE_BTI_DEFAULT) || defined(__ARM_FEATURE_PAC_DEFAULT)
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define CTX_FEATURE_BTI 1
#else
#define CTX_FEATURE_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT)
#define CTX_FEATURE_PAC 2
#else
#define CTX_FEATURE_PAC 0
#endif
/* GNU_PROPERTY_AARCH64_FEATURE_1_AND, so that a BTI/PAC build of the
 * library keeps its marking with this object linked in. */
	.section .note.gnu.property,"a"
	.p2align 3
	.long	4
	.long	16
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000		/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4
	.long	(CTX_FEATURE_BTI | CTX_FEATURE_PAC)
	.p2align 3
#endif

#endif

	.section .note.GNU-stack,"",%progbits
