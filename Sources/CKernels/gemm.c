#include "CKernels.h"
int ck_placeholder(void) { return 0; }
