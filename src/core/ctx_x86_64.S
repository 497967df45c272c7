/* Context switch for x86_64, System V ABI (Linux, the BSDs).
 *
 * Only what the ABI makes callee-saved is kept: rbx, rbp, r12-r15, the
 * control bits of MXCSR and the x87 control word.  Everything else is
 * already dead at the call, so the switch is an ordinary function call that
 * happens to return on another stack.
 *
 * A suspended context is a 64-byte frame on its own stack, and its saved
 * stack pointer points at the frame:
 *
 *     0  MXCSR (4 bytes), x87 control word (2 bytes), 2 zero bytes
 *     8  r15    16 r14    24 r13    32 r12    40 rbx    48 rbp
 *    56  return address
 *
 * The saved stack pointer is 16-byte aligned (the caller's rsp is 8 mod 16
 * after its call; six pushes and the 8-byte control-word slot add 56).
 *
 * CET: every entry point starts with endbr64 (a NOP on older CPUs).  When
 * built with -fcf-protection we mark the object IBT-compatible but never
 * SHSTK-compatible: switching stacks with a plain `ret` would not match the
 * shadow stack, so a library containing this file must run without one.
 */
#if defined(__x86_64__) && !defined(__ILP32__) && !defined(SCIO_CTX_UCONTEXT)

	.text

/* void scio__ctx_asm_swap(void **save_sp, void *new_sp)
 * rdi = where to store this context's stack pointer, rsi = the stack
 * pointer of the context to resume (a frame laid out as above). */
	.globl	scio__ctx_asm_swap
	.hidden	scio__ctx_asm_swap
	.type	scio__ctx_asm_swap, @function
	.p2align 4
scio__ctx_asm_swap:
	.cfi_startproc
	endbr64
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	pushq	$0			/* zero the padding: the slot is compared whole */
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	/* Rebuild the slot in rax from loads of the same widths as the stores
	 * just made: one 8-byte load over a 4- and a 2-byte store cannot be
	 * store-forwarded and stalls for a dozen cycles on every switch. */
	movl	(%rsp), %eax
	movzwl	4(%rsp), %ecx
	shlq	$32, %rcx
	orq	%rcx, %rax

	/* The frame on the new stack has the same layout, so the CFI above
	 * stays true after the stack pointer changes hands. */
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
ctx_restore:

	/* Loading MXCSR and especially the x87 control word can serialize the
	 * pipeline, and contexts almost always share them: load only if the
	 * slot differs from ours (still in rax).  MXCSR's sticky exception
	 * flags are part of the comparison, so they stay per context too. */
	cmpq	(%rsp), %rax
	je	1f
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
1:	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp
	ret
	.cfi_endproc
	.size	scio__ctx_asm_swap, .-scio__ctx_asm_swap

/* void scio__ctx_asm_jump(void *new_sp)
 * rdi = the stack pointer of the context to resume.  For a context that
 * is finished: nothing is saved, and the old stack is not written again.
 * rax = -1 cannot equal a saved control-word slot (its top bytes are
 * zero), so the resumed context's control words are always loaded. */
	.globl	scio__ctx_asm_jump
	.hidden	scio__ctx_asm_jump
	.type	scio__ctx_asm_jump, @function
	.p2align 4
scio__ctx_asm_jump:
	.cfi_startproc
	endbr64
	movq	$-1, %rax
	movq	%rdi, %rsp
	jmp	ctx_restore
	.cfi_endproc
	.size	scio__ctx_asm_jump, .-scio__ctx_asm_jump

/* void *scio__ctx_asm_prime(void *top, boot, entry, arg)
 * rdi = top of the new stack, rsi = boot, rdx = entry, rcx = arg.
 * Builds a frame that scio__ctx_asm_swap "returns" through into
 * ctx_trampoline with r12 = boot, r13 = entry, r14 = arg, rbp = 0, and the
 * control words of the caller (a new context inherits the rounding mode and
 * exception masks, as a new thread does).  Returns its stack pointer.
 *
 * Below the 16-byte aligned top we leave 16 zero bytes, then the 64-byte
 * frame: after its `ret` rsp is top - 16, 16-byte aligned, as the ABI
 * wants just before the trampoline's call. */
	.globl	scio__ctx_asm_prime
	.hidden	scio__ctx_asm_prime
	.type	scio__ctx_asm_prime, @function
	.p2align 4
scio__ctx_asm_prime:
	.cfi_startproc
	endbr64
	movq	%rdi, %rax
	andq	$-16, %rax
	subq	$80, %rax
	xorl	%r8d, %r8d
	movq	%r8, 0(%rax)
	stmxcsr	0(%rax)
	fnstcw	4(%rax)
	movq	%r8, 8(%rax)		/* r15 */
	movq	%rcx, 16(%rax)		/* r14 = arg */
	movq	%rdx, 24(%rax)		/* r13 = entry */
	movq	%rsi, 32(%rax)		/* r12 = boot */
	movq	%r8, 40(%rax)		/* rbx */
	movq	%r8, 48(%rax)		/* rbp = 0 ends frame-pointer walks */
	leaq	ctx_trampoline(%rip), %r9
	movq	%r9, 56(%rax)
	movq	%r8, 64(%rax)
	movq	%r8, 72(%rax)
	ret
	.cfi_endproc
	.size	scio__ctx_asm_prime, .-scio__ctx_asm_prime

/* Entered by `ret`, never called, so it needs no endbr64.  The undefined
 * return address tells unwinders (gdb, libunwind) that the stack ends here.
 * boot never returns; ud2 makes a broken promise fail loudly. */
	.type	ctx_trampoline, @function
	.p2align 4
ctx_trampoline:
	.cfi_startproc
	.cfi_undefined %rip
	movq	%r13, %rdi
	movq	%r14, %rsi
	call	*%r12
	ud2
	.cfi_endproc
	.size	ctx_trampoline, .-ctx_trampoline

#if defined(__CET__) && (__CET__ & 1)
/* GNU_PROPERTY_X86_FEATURE_1_AND = IBT only (see the CET note above). */
	.section .note.gnu.property,"a"
	.p2align 3
	.long	4
	.long	16
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000002		/* GNU_PROPERTY_X86_FEATURE_1_AND */
	.long	4
	.long	1			/* GNU_PROPERTY_X86_FEATURE_1_IBT */
	.p2align 3
#endif

#endif

	.section .note.GNU-stack,"",%progbits
