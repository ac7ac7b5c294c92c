package screen

// phrase is one injection phrasing, written against normalised text (see
// normText): lower-case ASCII, no accents, one space between words. trig
// lists the one- or two-word openings ("|"-separated); rest is the regular
// expression that must follow one of them.
type phrase struct {
	rule ruleID
	trig string
	rest string
}

// Fillers and nouns shared by the English override phrasings.
const (
	enStrong = `(?:all|any|previous|prior|preceding|above|earlier|former|foregoing|original|initial|system|developer|safety|your)`
	enFiller = `(?:the|of|these|those|each|every|and|given|existing|content|ethical|security|following|other|usual|old)`
	enNoun   = `(?:instructions?|prompts?|rules|directions?|directives|guidelines|guardrails|programming|restrictions|constraints|policies|filters|commands|inputs)`
	// sysNoun names a system prompt; sysMods may come before it. (The
	// phrases that use them are split to keep each program under the
	// 500 instructions of Go's backtracking matcher.)
	sysNoun = `(?:system prompt|system message|system instructions|hidden instructions|initial instructions|original instructions|starting instructions|initial prompt|original prompt|pre ?prompt|instructions you were given|prompt you were given|initial configuration)`
	sysMods = `(?:(?:full|entire|complete|hidden|secret|initial|original|exact|verbatim|starting|first|current) ){0,2}`
	// aiRules are the rules a jailbreak says its persona is free of.
	aiRules = `(?:restrictions|filters|guidelines|rules|limitations|content polic(?:y|ies)|polic(?:y|ies)|ethics|morals|morality|censorship)`
	// aiOwner names whose rules: the vendor's, the model's, or any.
	aiOwner  = `(?:(?:any|all|the|its|your|their|his|her|openai s|openai|chatgpt s|ai s|typical|usual|ethical|moral|safety) ){0,3}`
	enMods   = `(?:` + enFiller + ` ){0,3}` + enStrong + ` (?:(?:` + enStrong + `|` + enFiller + `) ){0,3}` + enNoun
	unlocked = `(?:unrestricted|unfiltered|uncensored|jailbroken|amoral|evil|unethical|rogue|unbound|unlimited)`
	botNoun  = `(?:ai|assistant|model|chatbot|version|llm|bot|system)`
)

var phrases = []phrase{
	// English: override and prompt extraction.
	{rInjOverride, "ignore|disregard|forget|skip|bypass|override|neglect|discard", ` ` + enMods},
	{rInjOverride, "forget|disregard|ignore", ` (?:everything|all) (?:you (?:ve been|have been|were|re) told|(?:that )?(?:came |was said |written )?(?:before|above|previously))`},
	{rInjOverride, "reveal|leak|dump|disclose", ` (?:me )?(?:your|the) (?:(?:full|entire|complete|hidden|secret|initial|original|exact|verbatim) ){0,3}(?:system prompt|system message|hidden instructions|initial instructions|original instructions|pre ?prompt)`},
	{rInjOverride, "print|show|output|repeat|display|tell", ` (?:me )?your (?:(?:full|entire|complete|hidden|secret|initial|original|exact|verbatim) ){0,3}(?:system prompt|system message|hidden instructions|initial instructions|original instructions|pre ?prompt)`},
	{rInjOverride, "repeat|output|print", ` (?:the |all )?(?:(?:words|text) above|above (?:words|text))`},
	{rInjOverride, "ignore|disregard", ` the rest of (?:this|the) (?:data|document|text|content|file|page|email) and (?:just |only |instead )?(?:print|say|output|write|respond|reply)`},
	{rInjOverride, "repeat|print|show|output|display|reveal|tell|give|encode|translate|write|dump|leak|disclose|recite|summarize|list", ` (?:me )?(?:back )?(?:(?:all of|the text of|the contents of) )?your ` + sysMods + sysNoun},
	{rInjOverride, "repeat|print|show|output|display|reveal|tell|give|encode|translate|write|dump|leak|disclose|recite|summarize|list", ` (?:me )?(?:back )?everything in (?:your|the) ` + sysMods + sysNoun},
	{rInjOverride, "repeat|print|show|output|display|reveal|tell|give|encode|translate|write|dump|leak|disclose|recite|summarize|list", ` (?:me )?(?:back )?the ` + sysMods + `(?:instructions|prompt|text|rules) you (?:were|ve been|have been|got) given`},
	{rInjOverride, "what are|what were|what is", ` your (?:initial|original|system|starting|first|hidden|secret) (?:instructions|prompt|message|rules)`},
	{rInjOverride, "what were", ` you told before`},
	{rInjOverride, "ignore|disregard", ` (?:all )?(?:instructions|directions)(?: and| then)? (?:just |only |instead )?(?:print|say|output|write|repeat|respond|reply|translate)`},
	{rInjOverride, "stop everything", ` (?:now )?(?:and )?(?:just )?(?:print|say|output|write|repeat)`},
	{rInjOverride, "forget|ignore|disregard", ` (?:everything|all) (?:you (?:have |ve )?(?:learned|learnt|know) (?:before|so far|until now)|(?:the |your )?(?:previous|prior) (?:conversations?|context))`},
	{rInjOverride, "you are|you re", ` (?:no longer|not) (?:bound|restricted|limited|constrained) by`},
	{rInjOverride, "do not|don t", ` (?:follow|obey) (?:your|the|any) (?:previous|prior|original|system|initial)`},
	{rInjOverride, "override|bypass|disable|deactivate|turn off", ` (?:your|the|all|any) (?:safety|content|ethical|security|moderation) (?:filters?|guidelines|restrictions|rules|protocols|settings|policies)`},
	// German.
	{rInjOverride, "ignoriere|ignorier|ignorieren|vergiss|vergessen|missachte|missachten|uberschreibe|umgehe", ` (?:(?:sie|bitte|einfach|du) ){0,2}(?:(?:alle|alles|jegliche|samtliche|die|deine|ihre|den|das|der|bisherigen|vorherigen|vorigen|obigen|vorangegangenen|fruheren|ursprunglichen|gegebenen|vorher|oben|genannten) ){1,4}(?:anweisungen|anweisung|instruktionen|regeln|vorgaben|befehle|richtlinien|systemanweisungen|systemprompt|einschrankungen|sicherheitsrichtlinien)`},
	{rInjOverride, "vergiss|vergessen", ` (?:sie )?alles (?:was )?(?:dir|ihnen|man dir) (?:bisher |vorher |zuvor )?gesagt`},
	{rInjOverride, "zeige|zeig|gib|verrate|wiederhole", ` (?:mir )?(?:deinen|deine|ihren|ihre|den) (?:(?:vollstandigen|geheimen|ursprunglichen) )?(?:systemprompt|system prompt|systemanweisungen|anweisungen)`},
	// French.
	{rInjOverride, "ignore|ignorez|ignorer|oublie|oubliez|oublier|ne tiens|ne tenez|contourne", ` (?:pas compte )?(?:de |des |d |du )?(?:(?:toutes|tous|toute|les|tes|vos|ces|la|le|l) ){0,3}(?:instructions?|consignes|regles|directives|ordres|indications) (?:precedentes|anterieures|ci dessus|initiales|d origine|du systeme|systeme|qu on t a donnees)`},
	{rInjOverride, "ignore|ignorez|oublie|oubliez", ` (?:toutes )?(?:tes|vos) (?:instructions|consignes|regles|directives)`},
	{rInjOverride, "revele|montre|affiche|repete|donne", ` (?:moi )?(?:ton|votre|le) (?:prompt systeme|prompt system|message systeme|prompt initial)`},
	// Spanish.
	{rInjOverride, "ignora|ignore|ignoren|ignorar|olvida|olvide|olviden|olvidar|omite|omita|descarta|desatiende|haz caso", ` (?:omiso )?(?:de )?(?:(?:todas|todos|toda|las|los|tus|sus|estas|esas|la|el) ){0,3}(?:instrucciones|indicaciones|reglas|directrices|ordenes|normas|instruccion) (?:anteriores|previas|de arriba|iniciales|del sistema|originales|que te (?:dieron|han dado|di))`},
	{rInjOverride, "ignora|olvida|ignore|olvide", ` (?:todas )?(?:tus|sus) (?:instrucciones|reglas|directrices|indicaciones)`},
	{rInjOverride, "revela|muestra|muestrame|repite|dime", ` (?:me )?(?:tu|su|el) (?:prompt (?:del )?sistema|mensaje (?:del )?sistema|prompt inicial)`},
	// Italian.
	{rInjOverride, "ignora|ignori|ignorate|dimentica|dimentichi|dimenticate|trascura|tralascia", ` (?:(?:tutte|tutti|tutto|le|gli|i|tue|sue|queste|quelle|del|della) ){0,3}(?:istruzioni|indicazioni|regole|direttive|ordini|prompt) (?:precedenti|iniziali|di sistema|del sistema|originali|sopra|ricevute|che ti (?:hanno|ho) dato)`},
	{rInjOverride, "ignora|dimentica|ignori|dimentichi", ` (?:tutte )?(?:le )?(?:tue|sue) (?:istruzioni|regole|direttive)`},
	{rInjOverride, "mostrami|rivelami|dimmi|ripeti|mostra|rivela", ` (?:il )?(?:tuo|suo) (?:prompt di sistema|messaggio di sistema|prompt iniziale|system prompt)`},
	// Portuguese.
	{rInjOverride, "ignore|ignora|ignorar|esqueca|esquece|esquecer|desconsidere|descarte", ` (?:(?:todas|todos|as|os|suas|tuas|essas|estas) ){0,3}(?:instrucoes|instrucao|regras|diretrizes|ordens|orientacoes) (?:anteriores|previas|iniciais|do sistema|originais|acima|que (?:te|lhe) (?:deram|dei))`},
	{rInjOverride, "ignore|esqueca|ignora|esquece", ` (?:todas )?(?:as )?(?:suas|tuas) (?:instrucoes|regras|diretrizes)`},
	{rInjOverride, "mostre|revele|repita|diga|mostra|revela", ` (?:me )?(?:o )?(?:seu|teu) (?:prompt (?:do |de )?sistema|mensagem (?:do |de )?sistema|prompt inicial)`},
	// Dutch.
	{rInjOverride, "negeer|vergeet|negeren|vergeten|omzeil", ` (?:(?:alle|al|de|je|jouw|uw|deze|die) ){0,3}(?:vorige|eerdere|voorgaande|bovenstaande|oorspronkelijke|originele|systeem) ?(?:instructies|instructie|regels|richtlijnen|opdrachten|aanwijzingen|prompt)`},
	{rInjOverride, "toon|laat|herhaal|geef", ` (?:me |mij )?(?:je|jouw|uw|de) (?:systeemprompt|systeem prompt|systeeminstructies|oorspronkelijke instructies)`},
	// Polish.
	{rInjOverride, "zignoruj|ignoruj|zapomnij|pomin", ` (?:o )?(?:(?:wszystkie|wszystkich|wszystko|twoje|swoje|te|powyzsze) ){0,3}(?:poprzednie|poprzednich|wczesniejsze|wczesniejszych|powyzsze|powyzszych|pierwotne|systemowe) (?:instrukcje|instrukcjach|instrukcji|polecenia|polecen|zasady|zasad|reguly|regul)`},
	{rInjOverride, "pokaz|ujawnij|powtorz|wypisz", ` (?:mi )?(?:swoj|twoj|swoje|twoje) (?:prompt systemowy|systemowy prompt|instrukcje systemowe|polecenie systemowe)`},

	// Role-play and "developer mode" jailbreaks.
	{rInjRoleplay, "you are|you re", ` (?:now )?(?:in |running in |operating in )?(?:developer|dan|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil) mode`},
	{rInjRoleplay, "you are|you re", ` (?:now )?(?:dan|stan|dude|aim|an? ` + unlocked + ` ` + botNoun + `)\b`},
	{rInjRoleplay, "enable|activate|enter|turn on|switch to", ` (?:the )?(?:dan|jailbreak|jailbroken|god|unrestricted|unfiltered|uncensored|evil) mode`},
	{rInjRoleplay, "chatgpt|gpt|ai|assistant|model|llm|you", ` (?:with|in) developer mode`},
	{rInjRoleplay, "do anything", ` now`},
	{rInjRoleplay, "act|acting|behave|respond|answer|roleplay|role play", ` (?:as|like) (?:an? )?(?:` + unlocked + ` ` + botNoun + `|dan|aim|stan)\b`},
	{rInjRoleplay, "pretend|imagine", ` (?:that )?(?:you are|you re|to be) (?:an? )?(?:` + botNoun + ` )?(?:with no|without any|without|that has no|with no) (?:restrictions|rules|filters|guidelines|limits|limitations|content policy|ethical guidelines|morals)`},
	{rInjRoleplay, "you have|you ve|you are|you re", ` (?:been )?(?:freed|liberated|released|unshackled|jailbroken) from (?:your|all|the|any)`},
	{rInjRoleplay, "from now", ` on you (?:are|will be|will act as|re) (?:dan\b|an? ` + unlocked + `)`},
	{rInjRoleplay, "simulate|emulate", ` (?:an? )?` + unlocked + ` ` + botNoun},
	{rInjRoleplay, "not bound|not restricted|not constrained|isn t|aren t|never bound", ` (?:bound |restricted |constrained )?by (?:(?:any|all|its|openai s|openai|chatgpt s|ai s|ethical|moral|safety) ){1,3}` + aiRules},
	{rInjRoleplay, "free of|free from|freed from|broken free|break free|breaks free|broke free", ` (?:of |from )?` + aiOwner + `(?:confines|shackles|limitations|restrictions and filters|rules and policies|restrictions|filters)`},
	{rInjRoleplay, "doesn t|does not|don t|do not|dont|doesnt|never|won t|will not", ` (?:have|has|follow|care about|abide by|adhere to|comply with|obey|respect) (?:to (?:abide by|follow) )?(?:any |the )?(?:of )?(?:openai s|openai|chatgpt s|ethical|moral|ethical or moral|moral or ethical|ethics or morals|morals or ethics) (?:content )?(?:guidelines|principles|rules|restrictions|boundaries|policies|policy|considerations|filters|tos)`},
	{rInjRoleplay, "amoral", ` (?:and (?:unfiltered|uncensored) )?(?:ai|chatbot|assistant|bot|model|character|persona|llm)\b`},
	{rInjRoleplay, "unfiltered|uncensored", ` and amoral`},
	{rInjRoleplay, "sends|send|gives|give|provides|provide|outputs|output", ` (?:the |an? )?(?:unfiltered|uncensored) (?:response|answer|reply|output)`},
	{rInjRoleplay, "does not|doesn t|don t|do not|dont|doesnt|never", ` cares? (?:about|for) (?:any |the )?(?:ethics|morals|morality|legality|ethicality|openai|openai s|ethical|moral|laws and)`},
	{rInjRoleplay, "unfiltered|unrestricted|jailbroken", ` (?:(?:and|completely|totally|fully) )*(?:(?:unlimited|unrestricted|uncensored|unfiltered|amoral) )?(?:language model|ai|chatbot|assistant|llm)\b`},
	{rInjRoleplay, "you have|it has|he has|she has", ` no (?:filters|ethics|morals|moral|ethical|censorship|content polic(?:y|ies)|restrictions on (?:your|its|his|her) (?:output|responses|answers|replies))`},
	{rInjRoleplay, "no matter", ` how (?:immoral|unethical|illegal|inappropriate)`},
	{rInjRoleplay, "no restrictions|no filters|no censorship", ` (?:and|or) (?:no )?(?:filters|restrictions|censorship)`},
	{rInjRoleplay, "no matter|doesn t|doesnt|does not", ` (?:matter )?(?:if|whether) (?:it s|its|it is) (?:something )?(?:illegal|unethical|immoral|inappropriate|innapropiate)`},
	{rInjRoleplay, "respond|answer|reply", ` (?:to )?(?:(?:every|each|all)(?: of my)? (?:prompts?|questions?|messages?|requests?)|my prompts)(?: i give you)? in two (?:different|separate|distinct) (?:ways|styles|manners)`},
	{rInjRoleplay, "you are|you re|you will", ` (?:not|no longer) (?:be )?(?:chatgpt|gpt|an ai|a language model|claude|bard|bing|an assistant)\b`},
	{rInjRoleplay, "not respond|no longer|never respond", ` (?:respond |answer |reply )?(?:to (?:prompts |me )?(?:from me )?)?as (?:chatgpt|gpt|an ai|a language model|claude|bard)\b`},
	{rInjRoleplay, "du bist", ` (?:jetzt|nun|ab sofort|ab jetzt) (?:ein |eine |im )?(?:dan|ungefiltert|uneingeschrankt|unzensiert|bose|jailbreak)[a-z]*`},
	{rInjRoleplay, "aktiviere|aktivieren|starte|wechsle", ` (?:sie )?(?:in )?(?:den )?(?:dan modus|jailbreak modus|uneingeschrankten modus)`},
	{rInjRoleplay, "tu|tue|tun", ` (?:sie )?so als (?:ob |wenn )?(?:du|sie) (?:keine|ohne) (?:regeln|einschrankungen|filter|richtlinien|grenzen)`},
	{rInjRoleplay, "antworte|antworten", ` (?:sie )?(?:ab jetzt |ab sofort |nun )?ohne (?:jegliche |alle |irgendwelche )?(?:einschrankungen|filter|zensur|regeln|richtlinien)`},
	{rInjRoleplay, "tu es", ` (?:maintenant|desormais|a present) (?:un |une |en )?(?:dan|ia |assistant |mode )?(?:sans (?:restrictions?|filtres?|limites|regles|censure)|non censure|libere|debride)`},
	{rInjRoleplay, "fais|faites", ` comme si (?:tu n avais|vous n aviez) (?:aucune|pas de|plus de) (?:restrictions?|regles|filtres?|limites)`},
	{rInjRoleplay, "reponds|repondez|agis|agissez", ` (?:desormais |maintenant )?(?:sans (?:aucune )?(?:restrictions?|filtres?|censure|limites)|comme une ia sans)`},
	{rInjRoleplay, "active|activez|passe|passez", ` (?:en )?(?:le )?mode (?:dan|jailbreak|sans restriction|sans filtre|debride)`},
	{rInjRoleplay, "ahora eres|desde ahora|a partir", ` (?:de ahora )?(?:eres )?(?:un |una )?(?:dan|ia |asistente |modelo )?(?:sin (?:restricciones|filtros|reglas|limites|censura)|liberad[oa]|desbloquead[oa])`},
	{rInjRoleplay, "finge|finja|imagina", ` que (?:no tienes|eres una ia sin|no tiene) (?:restricciones|reglas|filtros|limites)`},
	{rInjRoleplay, "responde|responda|actua|actue", ` (?:ahora |desde ahora )?(?:sin (?:restricciones|filtros|censura|limites)|como (?:un |una )?(?:ia |asistente )?sin (?:restricciones|filtros|censura))`},
	{rInjRoleplay, "activa|active|entra", ` (?:en )?(?:el )?modo (?:dan|jailbreak|sin restricciones|sin filtros)`},
	{rInjRoleplay, "ora sei|da ora|adesso sei", ` (?:in poi )?(?:sei )?(?:un |una |in )?(?:dan|ia |assistente |modalita )?(?:senza (?:restrizioni|filtri|regole|limiti|censura)|sviluppatore|jailbreak)`},
	{rInjRoleplay, "agora voce|a partir", ` (?:de agora )?(?:voce )?(?:e |esta )?(?:um |uma |no |em )?(?:dan|ia |assistente |modo )?(?:sem (?:restricoes|filtros|regras|limites|censura)|desenvolvedor|jailbreak)`},
	{rInjRoleplay, "je bent|vanaf nu", ` (?:nu |ben je )?(?:een |in )?(?:dan|ai |assistent |modus )?(?:zonder (?:beperkingen|filters|regels|grenzen|censuur)|ontwikkelaarsmodus|jailbreak)`},
	{rInjRoleplay, "jestes|od teraz", ` (?:teraz |jestes )?(?:w trybie |trybem )?(?:dan|ai |asystentem |modelem )?(?:bez (?:ograniczen|filtrow|zasad|cenzury)|dewelopera|jailbreak)`},
}
