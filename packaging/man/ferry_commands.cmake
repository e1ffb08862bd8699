# ferry_commands.cmake - run at build time (cmake -P) to make the ferry(1)
# man page's COMMANDS section from `ferry COMMAND --help`, so each command's
# options are in the page and never drift from the program.
#
#   cmake -DFERRY=path/to/ferry -DIN=man/ferry.h2m -DOUT=build/.../ferry.h2m -P ferry_commands.cmake
#
# OUT is IN with a [COMMANDS] section added: per command its --help text,
# preformatted, up to the exit-code table (the main --help has that once).
file(READ "${IN}" text)
string(APPEND text "\n[COMMANDS]\n")
foreach(cmd send recv ls info get rm retain check demo)
  execute_process(COMMAND "${FERRY}" ${cmd} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${FERRY} ${cmd} --help exited ${rc}")
  endif()
  string(FIND "${help}" "\nExit codes:" cut)
  if(cut GREATER 0)
    string(SUBSTRING "${help}" 0 ${cut} help)
  endif()
  string(STRIP "${help}" help)
  # roff: a backslash is \e; a line starting with . or ' would be a request.
  string(REPLACE "\\" "\\e" help "${help}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
  string(APPEND text ".SS \"ferry ${cmd}\"\n.nf\n${help}\n.fi\n")
endforeach()
file(WRITE "${OUT}" "${text}")
