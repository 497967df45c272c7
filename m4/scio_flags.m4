# scio_flags.m4 -- compiler-flag probes for scio's configure.ac.
#
# SCIO_CHECK_CFLAG(FLAG, VARIABLE)
# --------------------------------
# Append FLAG to the shell VARIABLE when the C compiler accepts it.  The probe
# compiles with -Werror added, because GCC and Clang only warn about some
# unknown options; without it every flag would look supported.  The result is
# cached per flag, so a re-run of configure costs nothing.
AC_DEFUN([SCIO_CHECK_CFLAG],
[AS_VAR_PUSHDEF([scio_cache], [scio_cv_cflag_$1])dnl
AC_CACHE_CHECK([whether $CC accepts $1], [scio_cache],
  [scio_save_CFLAGS=$CFLAGS
   CFLAGS="$CFLAGS -Werror $1"
   AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
     [AS_VAR_SET([scio_cache], [yes])],
     [AS_VAR_SET([scio_cache], [no])])
   CFLAGS=$scio_save_CFLAGS])
AS_VAR_IF([scio_cache], [yes], [AS_VAR_APPEND([$2], [" $1"])])
AS_VAR_POPDEF([scio_cache])dnl
])
