/* The resume trampoline of the public blocking functions on x86_64.
 * Why it exists, and how a function is routed through it, are in resume.h:
 * each such function's exported entry point is emitted by SCIO__BLOCKING
 * next to its C body, so this file knows no function by name.
 *
 * An entry point loads the address of its C body (scio__rs_<name>, hidden)
 * into rax and jumps here with the caller's arguments untouched.  The
 * trampoline calls the body from one call site for all of them, so that
 * two tasks blocked in different functions (a channel send and a receive,
 * say) still share every scio return address below the user's code.
 *
 * The trampoline uses only rax and rdx (the body's scio__rs) and rcx, which
 * the ABI leaves to the callee; the caller reads only eax.
 *
 * CET: when IBT is on (__CET__ bit 0, -fcf-protection) the trampoline is
 * not built: its indirect jump lands on return addresses, which carry no
 * endbr64, and resume.h then defines every blocking function in plain C.
 * The object is still assembled, empty, and says IBT-compatible, which an
 * empty object truthfully is; without the note the linker would drop the
 * library's IBT marking.  The condition must match resume.h's.
 */
#if defined(__x86_64__) && !defined(__ILP32__) && !defined(SCIO_CTX_UCONTEXT)

#if !(defined(__CET__) && (__CET__ & 1))
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
#else
/* GNU_PROPERTY_X86_FEATURE_1_AND = IBT only, as in ctx_x86_64.S. */
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
