// C glue over libjpeg-turbo, libpng and libwebp. See codecs.c.
#pragma once
