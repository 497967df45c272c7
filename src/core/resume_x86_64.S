/* Public blocking functions on x86_64: entry points and the resume
 * trampoline.
 * Why they exist, and the rules for adding one, are in resume.h.
 *
 * Each entry point is the exported symbol; it loads the address of its C body
 * (scio__rs_<name>, hidden) into rax and jumps to the trampoline with the
 * caller's arguments untouched.  rax is free: no function routed here
 * is variadic.  The trampoline calls the body from one call site for all of
 * them, so that two tasks blocked in different functions (a channel send
 * and a receive, say) still share every scio return address below the
 * user's code.
 *
 * The trampoline uses only rax and rdx (the body's scio__rs) and rcx, which
 * the ABI leaves to the callee; the caller reads only eax.  No CET note: the indirect jump lands on
 * return addresses, which carry no endbr64, and the call/jump pair breaks
 * shadow stacks, as the switch does.
 */
#if defined(__x86_64__) && !defined(__ILP32__) && !defined(SCIO_CTX_UCONTEXT)

	.text

	.globl	scio__resume_tramp
	.hidden	scio__resume_tramp
	.type	scio__resume_tramp, @function
	.p2align 5
scio__resume_tramp:
	.cfi_startproc
	subq	$8, %rsp		/* rsp was 8 mod 16: align for the call */
	.cfi_adjust_cfa_offset 8
	call	*%rax
	/* eax = the result, rdx = nonzero if the body switched (scio__rs). */
	testq	%rdx, %rdx
	jnz	1f
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	ret
	.cfi_adjust_cfa_offset 8
	/* Switched: return through the indirect-branch predictor. */
1:	movq	8(%rsp), %rcx
	addq	$16, %rsp
	.cfi_adjust_cfa_offset -16
	jmp	*%rcx
	.cfi_endproc
	.size	scio__resume_tramp, .-scio__resume_tramp

.macro SCIO_RESUME_ENTRY name
	.globl	\name
	.type	\name, @function
	.p2align 4
\name:
	.cfi_startproc
	endbr64
	leaq	scio__rs_\name(%rip), %rax
	jmp	scio__resume_tramp
	.cfi_endproc
	.size	\name, .-\name
.endm

/* core */
	SCIO_RESUME_ENTRY scio_checkpoint
	SCIO_RESUME_ENTRY scio_cancel_shielded_checkpoint
/* streams/channel.c */
	SCIO_RESUME_ENTRY scio_tx_send
	SCIO_RESUME_ENTRY scio_rx_receive

#endif

	.section .note.GNU-stack,"",%progbits
