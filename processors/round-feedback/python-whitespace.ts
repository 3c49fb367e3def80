/**
 * The characters for which Python's str.isspace() is true, as a regular-expression character class: what
 * str.strip() and str.split() with no argument treat as whitespace (it differs from JavaScript's \s).
 */
export const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
