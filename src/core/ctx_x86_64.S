/* Context switch for x86_64, System V ABI (Linux, the BSDs).
 *
 * A suspended context is four fields of its scio__ctx, not a frame on its
 * stack: the stack pointer, the frame pointer, the address to resume at
 * (ip), and the floating-point control words (MXCSR, and the x87 control
 * word used by long double).  Resuming one loads rsp and rbp, loads the
 * control words if they differ from the running ones, and jumps to ip with
 * rsi = the scio__ctx being resumed.  No other register survives: the code
 * at ip knows which of its own it needs.
 *
 * Why not the classic "push the callee-saved registers, swap stack
 * pointers, pop, ret": the hot switch (ctx.h, scio__ctx_switch_fast) is
 * inline assembly in the scheduler that declares every other register
 * clobbered, so the compiler saves only what is live across the switch,
 * and the switch itself never touches the return-stack predictor (a `ret`
 * into another task's frame is always a misprediction; an indirect jump to
 * a resume address that tasks share is predicted).  The functions below
 * follow the same protocol so that a context suspended by either kind is
 * resumed by either kind.
 *
 * The offsets are those of struct scio__ctx; ctx.c checks them at compile
 * time.
 *
 * CET: every global entry point starts with endbr64 (a NOP on older CPUs).
 * When built with -fcf-protection we mark the object IBT-compatible but
 * never SHSTK-compatible: a switch changes stacks without call and return,
 * so a library containing this file must run without a shadow stack.  The
 * resume addresses carry endbr64 too (resumes are indirect jumps).
 */
#if defined(__x86_64__) && !defined(__ILP32__) && !defined(SCIO_CTX_UCONTEXT)

#define CTX_SP 0
#define CTX_IP 48
#define CTX_BP 56
#define CTX_MXCSR 64
#define CTX_X87CW 68

	.text

/* void scio__ctx_asm_swap(scio__ctx *from, scio__ctx *to)
 * The out-of-line switch, for callers that are plain C: it keeps the
 * callee-saved registers on the stack it leaves, and restores them when
 * something resumes it at 1:. */
	.globl	scio__ctx_asm_swap
	.hidden	scio__ctx_asm_swap
	.type	scio__ctx_asm_swap, @function
	.p2align 4
scio__ctx_asm_swap:
	.cfi_startproc
	endbr64
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
	stmxcsr	CTX_MXCSR(%rdi)
	fnstcw	CTX_X87CW(%rdi)
	leaq	1f(%rip), %rax
	movq	%rsp, CTX_SP(%rdi)
	movq	%rbp, CTX_BP(%rdi)
	movq	%rax, CTX_IP(%rdi)
	/* Loading MXCSR and especially the x87 control word can serialize the
	 * pipeline, and contexts almost always share them: load only what
	 * differs.  Loads of the same widths as the stores just made, so that
	 * they are store-forwarded.  MXCSR's sticky exception flags are part of
	 * the comparison, so they stay per context too. */
	movl	CTX_MXCSR(%rdi), %eax
	cmpl	CTX_MXCSR(%rsi), %eax
	jne	2f
	movzwl	CTX_X87CW(%rdi), %eax
	cmpw	CTX_X87CW(%rsi), %ax
	jne	2f
3:	movq	CTX_SP(%rsi), %rsp
	movq	CTX_BP(%rsi), %rbp
	jmpq	*CTX_IP(%rsi)
2:	ldmxcsr	CTX_MXCSR(%rsi)
	fldcw	CTX_X87CW(%rsi)
	jmp	3b
	/* Resumed: rsp is ours again, with the five registers on it. */
1:	endbr64
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
	ret
	.cfi_endproc
	.size	scio__ctx_asm_swap, .-scio__ctx_asm_swap

/* void scio__ctx_asm_jump(scio__ctx *to)
 * Resume `to` and never come back: nothing is saved, and the old stack is
 * not written again.  The control words are always loaded, since nothing
 * says what the running ones are. */
	.globl	scio__ctx_asm_jump
	.hidden	scio__ctx_asm_jump
	.type	scio__ctx_asm_jump, @function
	.p2align 4
scio__ctx_asm_jump:
	.cfi_startproc
	endbr64
	movq	%rdi, %rsi
	ldmxcsr	CTX_MXCSR(%rsi)
	fldcw	CTX_X87CW(%rsi)
	movq	CTX_SP(%rsi), %rsp
	movq	CTX_BP(%rsi), %rbp
	jmpq	*CTX_IP(%rsi)
	.cfi_endproc
	.size	scio__ctx_asm_jump, .-scio__ctx_asm_jump

/* Where a new context starts (its first ip).  ctx.c leaves on the new
 * stack, at its saved stack pointer: boot, entry, arg, 0; the stack
 * pointer is 16-byte aligned.  rbp is 0, which ends frame-pointer walks,
 * and the undefined return address tells unwinders (gdb, libunwind) that
 * the stack ends here.  boot never returns; ud2 makes a broken promise
 * fail loudly. */
	.globl	scio__ctx_asm_start
	.hidden	scio__ctx_asm_start
	.type	scio__ctx_asm_start, @function
	.p2align 4
scio__ctx_asm_start:
	.cfi_startproc
	.cfi_undefined %rip
	endbr64
	movq	0(%rsp), %rax
	movq	8(%rsp), %rdi
	movq	16(%rsp), %rsi
	call	*%rax
	ud2
	.cfi_endproc
	.size	scio__ctx_asm_start, .-scio__ctx_asm_start

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
