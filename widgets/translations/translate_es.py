"""The Spanish catalogue, written from this table so it is reviewable as code.

Run after ``pybabel extract`` (see docs/widgets.md): it writes es/LC_MESSAGES/messages.po from
messages.pot and compiles the .mo next to it. A msgid missing here is reported and left
untranslated (English), never guessed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ES = {
    "Recent activity": "Actividad reciente",
    "XP": "XP",
    "Badge: %(name)s": "Insignia: %(name)s",
    "Nothing yet: your awards will appear here.": "Nada todavía: tus logros aparecerán aquí.",
    "Badges": "Insignias",
    "Earned %(date)s": "Obtenida el %(date)s",
    "No badges yet.": "Aún no hay insignias.",
    "Next to earn": "Próximas por conseguir",
    "%(have)s of %(need)s events": "%(have)s de %(need)s actividades",
    "%(have)s of %(need)s different items": "%(have)s de %(need)s elementos distintos",
    "%(have)s of %(need)s streak days": "%(have)s de %(need)s días de racha",
    "level %(have)s of %(need)s": "nivel %(have)s de %(need)s",
    "%(have)s of %(need)s XP": "%(have)s de %(need)s XP",
    "%(have)s of %(need)s": "%(have)s de %(need)s",
    "Anonymous learner": "Estudiante anónimo",
    "you": "tú",
    "This week": "Esta semana",
    "This month": "Este mes",
    "Leaderboard": "Clasificación",
    "Live board unavailable; showing the stored totals.": (
        "Clasificación en vivo no disponible; se muestran los totales guardados."
    ),
    "You are #%(rank)s of %(total)s.": "Estás en el puesto %(rank)s de %(total)s.",
    "Earn XP to appear on the board.": "Gana XP para aparecer en la clasificación.",
    "Top players": "Mejores participantes",
    "Rank": "Puesto",
    "Player": "Participante",
    "No XP earned yet.": "Aún nadie ha ganado XP.",
    "Show my name to others": "Mostrar mi nombre a los demás",
    "Hide my name from others": "Ocultar mi nombre a los demás",
    "Level %(level)s": "Nivel %(level)s",
    "Progress to level %(level)s": "Progreso hacia el nivel %(level)s",
    "%(xp)s XP to level %(level)s": "%(xp)s XP para el nivel %(level)s",
    "Top level reached.": "Has alcanzado el nivel máximo.",
    "Recent gains": "Ganancias recientes",
    "Streak": "Racha",
    ("%(num)s day", "%(num)s days"): ("%(num)s día", "%(num)s días"),
    "Longest": "Más larga",
    "Today": "Hoy",
    "Counted": "Contado",
    "Not yet: %(hours)s h left": "Todavía no: quedan %(hours)s h",
    "Freezes": "Protectores",
    "Questline": "Questline",
    "Roster": "Lista de participantes",
    "Export CSV": "Exportar CSV",
    ("%(num)s player", "%(num)s players"): ("%(num)s participante", "%(num)s participantes"),
    "Level": "Nivel",
    "No players yet.": "Aún no hay participantes.",
    "Badge awarded.": "Insignia otorgada.",
    "Badge revoked.": "Insignia revocada.",
    "Revoked: %(reason)s": "Revocada: %(reason)s",
    "Reason": "Motivo",
    "Revoke": "Revocar",
    "Award a badge": "Otorgar una insignia",
    "Badge": "Insignia",
    "Award": "Otorgar",
    "Activity": "Actividad",
    "Updated.": "Actualizado.",
    "League": "Liga",
    "%(tier)s league": "Liga %(tier)s",
    "Leagues are not turned on here.": "Las ligas no están activadas aquí.",
    "Earn XP this week to join a league.": "Gana XP esta semana para entrar en una liga.",
    "%(hours)s h left this week.": "Quedan %(hours)s h esta semana.",
    "Top %(n)s move up.": "Los %(n)s primeros suben.",
    "Bottom %(n)s move down.": "Los %(n)s últimos bajan.",
    "League standings": "Clasificación de la liga",
    "moves up": "sube",
    "moves down": "baja",
    "My progress": "Mi progreso",
    "Active days": "Días activos",
    "Active on %(n)s of the last %(days)s days.": "Activo %(n)s de los últimos %(days)s días.",
    "XP, last 30 days": "XP, últimos 30 días",
    "From %(start)s to %(end)s XP.": "De %(start)s a %(end)s XP.",
    "XP by course": "XP por curso",
    (
        "Your %(num)s-day streak ends in %(hours)s h: one activity today keeps it.",
        "Your %(num)s-day streak ends in %(hours)s h: one activity today keeps it.",
    ): (
        "Tu racha de %(num)s día termina en %(hours)s h: una actividad hoy la mantiene.",
        "Tu racha de %(num)s días termina en %(hours)s h: una actividad hoy la mantiene.",
    ),
    "One more step to earn %(badge)s!": "¡Un paso más para conseguir %(badge)s!",
    "Turn off reminders": "Desactivar recordatorios",
    "Turn on reminders": "Activar recordatorios",
    # Quests widget (issue 7, learner side)
    "Quests": "Misiones",
    "Reward:": "Recompensa:",
    "+%(xp)s XP": "+%(xp)s XP",
    "+%(coins)s coins": "+%(coins)s monedas",
    "badge %(name)s": "insignia %(name)s",
    "nothing": "nada",
    "Completed for %(period)s.": "Completada en %(period)s.",
    "Claimed.": "Reclamada.",
    ("%(num)s hour left", "%(num)s hours left"): ("Queda %(num)s hora", "Quedan %(num)s horas"),
    ("Claim within %(num)s hour.", "Claim within %(num)s hours."): (
        "Reclámala en menos de %(num)s hora.",
        "Reclámala en menos de %(num)s horas.",
    ),
    "Claim reward": "Reclamar recompensa",
    "No quests running right now.": "No hay misiones en curso ahora mismo.",
    "Reward claimed: %(reward)s.": "Recompensa reclamada: %(reward)s.",
    "Already claimed: you received %(reward)s.": "Ya reclamada: recibiste %(reward)s.",
    "This quest is not completed yet, so there is no reward to claim.": (
        "Esta misión aún no está completada, así que no hay recompensa que reclamar."
    ),
    "This reward cannot be claimed.": "Esta recompensa no se puede reclamar.",
    # Learner dashboard: daily goal and mastery per module (issue 7, learner side)
    "Daily goal": "Meta diaria",
    "Goal met: %(xp)s of %(goal)s XP today.": "Meta cumplida: %(xp)s de %(goal)s XP hoy.",
    "%(xp)s of %(goal)s XP today: %(left)s XP to go.": (
        "%(xp)s de %(goal)s XP hoy: faltan %(left)s XP."
    ),
    "Mastery by module": "Dominio por módulo",
    "Other activities": "Otras actividades",
    ("best score, %(num)s scored item", "mean best score, %(num)s scored items"): (
        "mejor puntuación, %(num)s elemento puntuado",
        "media de mejores puntuaciones, %(num)s elementos puntuados",
    ),
    "%(done)s of %(total)s items completed": "%(done)s de %(total)s elementos completados",
    "No scored or completed items yet.": "Aún no hay elementos puntuados ni completados.",
    # Instructor pages: rules, analytics (and the badge shelf's Open Badge link).
    "The last %(window)s hold %(total)s events, more than this page replays (%(limit)s): choose a shorter window, or ask an administrator to run `questline rules simulate`.": (  # noqa: E501
        "Los últimos %(window)s contienen %(total)s eventos, más de los que esta página "
        "reproduce (%(limit)s): elige un periodo más corto o pide a un administrador que "
        "ejecute `questline rules simulate`."
    ),
    "Retro would replay %(total)s events, more than this page does (%(limit)s): activate without retro, and ask an administrator to run `questline rules load --retro`.": (  # noqa: E501
        "La retroactividad reproduciría %(total)s eventos, más de los que esta página hace "
        "(%(limit)s): activa sin retroactividad y pide a un administrador que ejecute "
        "`questline rules load --retro`."
    ),
    "Open Badge:": "Open Badge:",
    "Instructor dashboard": "Panel del docente",
    "Rules": "Reglas",
    "Analytics": "Analítica",
    "all courses": "todos los cursos",
    "Streak ends within (hours)": "La racha termina en (horas)",
    "Inactive for (days)": "Inactivo durante (días)",
    "Update": "Actualizar",
    "Learners at risk": "Estudiantes en riesgo",
    ("Streak ends within %(hours)s hour: %(num)s", "Streak ends within %(hours)s hours: %(num)s"): (
        "La racha termina en %(hours)s hora: %(num)s",
        "La racha termina en %(hours)s horas: %(num)s",
    ),
    "Streaks at risk": "Rachas en riesgo",
    "Hours left": "Horas restantes",
    "Nobody right now.": "Nadie por ahora.",
    ("Inactive for %(days)s day or more: %(num)s", "Inactive for %(days)s days or more: %(num)s"): (
        "Inactivos %(days)s día o más: %(num)s",
        "Inactivos %(days)s días o más: %(num)s",
    ),
    "Inactive learners": "Estudiantes inactivos",
    "Last active": "Última actividad",
    ("%(num)s day ago", "%(num)s days ago"): ("hace %(num)s día", "hace %(num)s días"),
    "never": "nunca",
    "Showing the %(shown)s longest inactive.": (
        "Se muestran los %(shown)s inactivos desde hace más tiempo."
    ),
    "XP distribution": "Distribución de XP",
    "course XP": "XP del curso",
    "As a table": "Como tabla",
    "Players": "Participantes",
    "Badges earned": "Insignias obtenidas",
    "Learners": "Estudiantes",
    "No badges earned yet.": "Aún no se ha obtenido ninguna insignia.",
    "Economy health": "Salud de la economía",
    "Coins minted": "Monedas emitidas",
    "Coins spent": "Monedas gastadas",
    "In circulation": "En circulación",
    "Spent of minted": "Gastado de lo emitido",
    "Last 30 days: %(minted)s minted, %(spent)s spent.": (
        "Últimos 30 días: %(minted)s emitidas, %(spent)s gastadas."
    ),
    "Source": "Origen",
    "Minted": "Emitidas",
    "Spent": "Gastadas",
    "Coins are tenant-wide: these are the coins of this course\u2019s players.": (
        "Las monedas son de toda la organización: estas son las de los participantes de este curso."
    ),
    "Version %(version)s is active.": "La versión %(version)s está activa.",
    "Version %(version)s is active and history was re-scored.": (
        "La versión %(version)s está activa y se volvió a puntuar el historial."
    ),
    "Active version: %(version)s.": "Versión activa: %(version)s.",
    "This course has no rule set of its own yet: the tenant rules apply. Rules you add here apply on top of them.": (  # noqa: E501
        "Este curso aún no tiene reglas propias: se aplican las de la organización. Las reglas "
        "que añadas aquí se aplican además de ellas."
    ),
    "The built-in default rules apply.": "Se aplican las reglas predeterminadas.",
    "Rule set (YAML)": "Reglas (YAML)",
    "No errors.": "Sin errores.",
    "Errors": "Errores",
    "line": "línea",
    ("%(num)s error", "%(num)s errors"): ("%(num)s error", "%(num)s errores"),
    "Validation": "Validación",
    "Check": "Comprobar",
    "Simulate over the last": "Simular sobre los últimos",
    "Simulate": "Simular",
    "Activate": "Activar",
    "From now on (new events only)": "Desde ahora (solo eventos nuevos)",
    "With retro: re-score past events under the new rules": (
        "Con retroactividad: volver a puntuar los eventos pasados con las nuevas reglas"
    ),
    "Save and activate": "Guardar y activar",
    "Simulation": "Simulación",
    "%(events)s events of %(players)s players replayed (last %(window)s); %(changed)s players would change.": (  # noqa: E501
        "%(events)s eventos de %(players)s participantes reproducidos (últimos %(window)s); "
        "cambiarían %(changed)s participantes."
    ),
    "XP now": "XP ahora",
    "XP after": "XP después",
    "Change": "Cambio",
    "level %(before)s → %(after)s": "nivel %(before)s → %(after)s",
    "Showing the %(shown)s largest changes.": "Se muestran los %(shown)s cambios mayores.",
    "Versions": "Versiones",
    "Version %(version)s": "Versión %(version)s",
    "active": "activa",
    "You are in the %(tier)s demotion zone with %(hours)s h left: %(xp)s XP lifts you to safety.": (
        "Estás en la zona de descenso de %(tier)s y quedan %(hours)s h: %(xp)s XP te ponen a salvo."
    ),
}


def main() -> int:
    here = Path(__file__).parent
    with open(here / "messages.pot", "rb") as f:
        catalog = read_po(f, locale="es")
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = tuple(message.id) if isinstance(message.id, list | tuple) else message.id
        if key in ES:
            message.string = ES[key]
        else:
            missing.append(message.id)
    out = here / "es" / "LC_MESSAGES"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "messages.po", "wb") as f:
        write_po(f, catalog, omit_header=True, no_location=True)
    with open(out / "messages.mo", "wb") as f:
        write_mo(f, catalog)
    for msgid in missing:
        print(f"untranslated: {msgid!r}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
