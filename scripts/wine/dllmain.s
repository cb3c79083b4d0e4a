# DllMain for the bcryptprimitives forwarder: returns TRUE, does nothing.
	.text
	.globl	DllMain
DllMain:
	movl	$1, %eax
	ret
